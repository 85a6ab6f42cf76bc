"""Tokenizer benchmark: training time and peak memory on N MB of text, and batched encode
throughput.

    PYTHONPATH=. python -m dsllm.bench.tokenizer --mb=100 --out=/tmp/tokbench [--backend=sentencepiece]

The text (written under --out, never in the repo) mixes Python standard-library source
(code), synthetic English-like web pages (dsllm.data.corpus.synthetic) and synthetic CJK text
with punctuation and digits. Training uses the DeepSeek layout (100,000 learned tokens + 15
specials, padded to 102,400) unless --learned_tokens says otherwise. Peak memory is the
process's maximum resident set size (training runs in a child process so that it is measured
alone).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import sysconfig
import time

from absl import app, flags

flags.DEFINE_integer("mb", 100, "megabytes of training text")
flags.DEFINE_string("out", "/tmp/dsllm_tokbench", "work directory (text, tokenizer, results)")
flags.DEFINE_enum("backend", "sentencepiece", ["sentencepiece", "hf"], "trainer backend")
flags.DEFINE_enum("pretokenizer", "native", ["native", "deepseek"], "sentencepiece pre-tokenization")
flags.DEFINE_integer("learned_tokens", 100_000, "learned tokens (specials added on top)")
flags.DEFINE_integer("pad_to", 102_400, "model vocabulary")
flags.DEFINE_integer("encode_mb", 20, "megabytes of text to encode for the throughput figure")
flags.DEFINE_integer("batch_size", 256, "documents per encode_batch call")
flags.DEFINE_bool("train_only_child", False, "internal: run training only")
FLAGS = flags.FLAGS

CJK_CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理世"
CJK_PUNCT = "，。、；：？！「」（）《》"


def make_text(path: str, mb: int, seed: int = 0):
    """Writes about `mb` MB of mixed text (one document per blank-line-separated block)."""
    from dsllm.data.corpus.synthetic import TextGen

    target = mb * 1_000_000
    rng = random.Random(seed)
    gen = TextGen(seed)
    stdlib = sysconfig.get_paths()["stdlib"]
    code_files = []
    for root, _, files in os.walk(stdlib):
        if "site-packages" in root or "/test" in root:
            continue
        code_files += [os.path.join(root, f) for f in files if f.endswith(".py")]
    code_files.sort()
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        ci = 0
        while size < target:
            u = rng.random()
            if u < 0.3 and ci < len(code_files):
                try:
                    block = open(code_files[ci], encoding="utf-8").read()
                except (UnicodeDecodeError, OSError):
                    block = ""
                ci += 1
            elif u < 0.8:
                block = "\n\n".join(gen.body()) + f" {rng.randint(0, 10**6)}."
            else:
                block = "".join(rng.choice(CJK_CHARS) if rng.random() > 0.08 else rng.choice(CJK_PUNCT)
                                for _ in range(rng.randint(200, 2000))) + str(rng.randint(0, 9999)) + "。"
            f.write(block + "\n\n")
            size += len(block.encode("utf-8")) + 2
    return size


def train_child(argv):
    from dsllm.tokenizer import train_tokenizer

    text, out, backend, learned, pad_to, pretok = argv
    opts = dict(pretokenizer=pretok) if backend == "sentencepiece" else {}
    t0 = time.time()
    train_tokenizer([text], None, out, backend=backend, learned_tokens=int(learned), pad_to=int(pad_to), **opts)
    dt = time.time() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(train_seconds=dt, peak_rss_mb=peak_kb / 1024)))


def main(argv):
    if FLAGS.train_only_child:
        return train_child(argv[1:])
    os.makedirs(FLAGS.out, exist_ok=True)
    text = os.path.join(FLAGS.out, f"text_{FLAGS.mb}mb.txt")
    if not os.path.exists(text):
        make_text(text, FLAGS.mb)
    nbytes = os.path.getsize(text)
    suffix = "_deepseek" if FLAGS.backend == "sentencepiece" and FLAGS.pretokenizer == "deepseek" else ""
    tok_dir = os.path.join(FLAGS.out, f"tok_{FLAGS.backend}{suffix}_{FLAGS.learned_tokens}")
    r = subprocess.run([sys.executable, "-m", "dsllm.bench.tokenizer", "--train_only_child", text, tok_dir,
                        FLAGS.backend, str(FLAGS.learned_tokens), str(FLAGS.pad_to), FLAGS.pretokenizer],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr[-3000:])
    res = json.loads(r.stdout.strip().splitlines()[-1])

    from dsllm.tokenizer import load_tokenizer

    tok = load_tokenizer(tok_dir)
    with open(text, encoding="utf-8") as f:
        docs = f.read(FLAGS.encode_mb * 1_000_000).split("\n\n")
    enc_bytes = sum(len(d.encode("utf-8")) for d in docs)
    t0 = time.time()
    n_tok = 0
    for i in range(0, len(docs), FLAGS.batch_size):
        n_tok += sum(len(x) for x in tok.encode_batch(docs[i:i + FLAGS.batch_size]))
    dt = time.time() - t0
    t0 = time.time()
    for d in docs[:2000]:
        tok.encode(d)
    single_bytes = sum(len(d.encode("utf-8")) for d in docs[:2000])
    dt1 = time.time() - t0
    res.update(backend=FLAGS.backend, pretokenizer=FLAGS.pretokenizer if FLAGS.backend == "sentencepiece" else "deepseek",
               text_mb=nbytes / 1e6, learned_tokens=FLAGS.learned_tokens,
               vocab_size=tok.vocab_size, cores=os.cpu_count(),
               encode_batch_mb_per_s=enc_bytes / dt / 1e6, encode_single_mb_per_s=single_bytes / dt1 / 1e6,
               bytes_per_token=enc_bytes / max(n_tok, 1), batch_size=FLAGS.batch_size)
    print(json.dumps(res, indent=1))
    with open(os.path.join(FLAGS.out, f"result_{FLAGS.backend}{suffix}.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    app.run(main)
