"""The scaling study's corpus: the Python source files installed on a machine, exactly deduplicated.

    python -m dsllm.scaling.code_corpus --out=DIR [--roots=DIR,DIR] [--max_mb=0]
        [--tokenizer_mb=32] [--validation_fraction=0.02]

Writes, each under a temporary name renamed when complete:
  DIR/corpus.jsonl            one {"text", "path"} per unique file, in hash order (a random mix of
                              packages; a --max_mb cap keeps a random subset)
  DIR/tokenizer_sample.jsonl  the first --tokenizer_mb of those, validation documents left out, to
                              train the tokenizer on part of the corpus only
  DIR/stats.json              files seen, kept, and dropped by reason
Validation documents are the ones dsllm.data.prepare will hold out with the same
--validation_fraction and seed (a hash of the text), so the tokenizer never sees them.
Roots default to this interpreter's standard library and site-packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig

from absl import app, flags

MIN_BYTES = 100          # empty __init__.py files and one-liners carry nothing to learn
MAX_FILE_BYTES = 256_000  # generated tables and vendored bundles; code is rarely longer


def default_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = []
    for key in ("stdlib", "purelib", "platlib"):
        p = os.path.realpath(paths[key])
        if os.path.isdir(p) and not any(p == r or p.startswith(r + os.sep) for r in roots):
            roots = [r for r in roots if not r.startswith(p + os.sep)] + [p]
    return roots


def iter_python_files(roots: list[str]):
    """Every *.py under the roots, each real file once, in a fixed order."""
    seen = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    real = os.path.realpath(path)
                    if real not in seen and os.path.isfile(real):
                        seen.add(real)
                        yield path


def collect(roots: list[str], max_bytes: int = 0) -> tuple[list[tuple[str, str, str]], dict]:
    """(sha256, path, text) of the unique files, in hash order, and counts of what was dropped."""
    stats = dict(files=0, too_small=0, too_large=0, not_utf8=0, duplicates=0, kept=0, bytes=0, capped=0)
    docs = {}
    for path in iter_python_files(roots):
        stats["files"] += 1
        try:
            size = os.path.getsize(path)
            if size < MIN_BYTES:
                stats["too_small"] += 1
                continue
            if size > MAX_FILE_BYTES:
                stats["too_large"] += 1
                continue
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            stats["not_utf8"] += 1  # unreadable counts with undecodable: both are not text we can use
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            stats["not_utf8"] += 1
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in docs:
            stats["duplicates"] += 1
            continue
        docs[digest] = (path, text)
    out = []
    for digest in sorted(docs):
        path, text = docs[digest]
        n = len(text.encode("utf-8"))
        if max_bytes and stats["bytes"] + n > max_bytes:
            stats["capped"] += 1
            continue
        out.append((digest, path, text))
        stats["bytes"] += n
    stats["kept"] = len(out)
    return out, stats


def _write_jsonl(path: str, records):
    tmp = path + ".tmp"
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def build(out_dir: str, roots: list[str] | None = None, *, max_mb: float = 0, tokenizer_mb: float = 32,
          validation_fraction: float = 0.02, seed: int = 0) -> dict:
    from dsllm.data.prepare import is_validation

    roots = roots or default_roots()
    missing = [r for r in roots if not os.path.isdir(r)]
    if missing:
        raise ValueError(f"source roots {missing} are not directories")
    os.makedirs(out_dir, exist_ok=True)
    docs, stats = collect(roots, int(max_mb * 1e6))
    if not docs:
        raise ValueError(f"no Python source files of {MIN_BYTES}..{MAX_FILE_BYTES} bytes under {roots}")
    budget, sample = tokenizer_mb * 1e6, []
    for _, path, text in docs:
        if budget <= 0:
            break
        if not is_validation(text, validation_fraction, seed):
            sample.append(dict(text=text, path=path))
            budget -= len(text.encode("utf-8"))
    stats.update(roots=roots, tokenizer_sample_documents=len(sample),
                 tokenizer_sample_bytes=sum(len(d["text"].encode("utf-8")) for d in sample),
                 validation_fraction=validation_fraction, seed=seed)
    _write_jsonl(os.path.join(out_dir, "tokenizer_sample.jsonl"), sample)
    _write_jsonl(os.path.join(out_dir, "corpus.jsonl"), (dict(text=t, path=p) for _, p, t in docs))
    with open(os.path.join(out_dir, "stats.json.tmp"), "w") as f:
        json.dump(stats, f, indent=1)
    os.replace(os.path.join(out_dir, "stats.json.tmp"), os.path.join(out_dir, "stats.json"))
    return stats


flags.DEFINE_string("out", None, "output directory")
flags.DEFINE_list("roots", [], "directories to search for *.py (default: this Python's stdlib and site-packages)")
flags.DEFINE_float("max_mb", 0, "keep at most this many MB of unique files, a random subset (0: all)")
flags.DEFINE_float("tokenizer_mb", 32, "MB of training documents in the tokenizer sample")
flags.DEFINE_float("validation_fraction", 0.02, "the fraction dsllm.data.prepare will hold out (same value)")
flags.DEFINE_integer("seed", 0, "the seed dsllm.data.prepare will use (same value)")


def main(argv):
    del argv
    if not flags.FLAGS.out:
        sys.exit("error: give --out=DIR")
    try:
        s = build(flags.FLAGS.out, flags.FLAGS.roots or None, max_mb=flags.FLAGS.max_mb,
                  tokenizer_mb=flags.FLAGS.tokenizer_mb, validation_fraction=flags.FLAGS.validation_fraction,
                  seed=flags.FLAGS.seed)
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(f"{s['kept']:,} unique files, {s['bytes'] / 1e6:.1f} MB, from {s['files']:,} .py files under "
          f"{', '.join(s['roots'])}; dropped: {s['duplicates']:,} exact duplicates, {s['too_small']:,} under "
          f"{MIN_BYTES} B, {s['too_large']:,} over {MAX_FILE_BYTES // 1000} kB, {s['not_utf8']:,} not UTF-8, "
          f"{s['capped']:,} over the --max_mb cap; tokenizer sample {s['tokenizer_sample_bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    app.run(main)
