"""`python -m dsllm.tokenizer train --input=FILES --vocab_size=N --out=DIR` and friends.

Subcommands:
  train   train a DeepSeek-style byte-level BPE (SentencePiece by default, --backend=hf for
          Hugging Face tokenizers with DeepSeek's exact pre-tokenizer)
  encode  print the ids and pieces of --text with --tokenizer
  info    print a tokenizer's sizes and special ids
"""

from __future__ import annotations

import json
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "training files: comma-separated paths, globs or directories "
                    "(plain text, .jsonl[.gz] with a text field, or .parquet)")
flags.DEFINE_integer("vocab_size", None, "ids of the tokenizer, the 15 special tokens included")
flags.DEFINE_integer("learned_tokens", None, "alternative to --vocab_size: learned tokens (vocab = this + 15)")
flags.DEFINE_integer("pad_to", None, "model vocabulary size (>= vocab_size) recorded as the tokenizer's vocab_size")
flags.DEFINE_enum("preset", None, ["deepseek"], "deepseek: 100,000 learned + 15 specials, padded to 102,400")
flags.DEFINE_string("out", None, "output directory")
flags.DEFINE_enum("backend", "sentencepiece", ["sentencepiece", "hf"], "trainer backend")
flags.DEFINE_string("text_field", "text", "JSONL/Parquet field holding the text")
flags.DEFINE_enum("pretokenizer", "native", ["native", "deepseek"],
                  "sentencepiece: native script/digit splitting, or DeepSeek's regex pre-tokenizer first")
flags.DEFINE_float("character_coverage", 0.9995, "sentencepiece: characters covered by pieces (rest -> bytes)")
flags.DEFINE_integer("max_piece_length", 32, "sentencepiece: longest piece in characters")
flags.DEFINE_integer("max_sentence_bytes", 1 << 16, "sentencepiece: longer lines are split (never dropped)")
flags.DEFINE_integer("input_sentence_size", 0, "sentencepiece: sample this many lines (0 = all)")
flags.DEFINE_integer("num_threads", None, "trainer threads (default: all cores)")
flags.DEFINE_integer("min_frequency", 2, "hf: minimum pair frequency for a merge")
flags.DEFINE_string("tokenizer", None, "encode/info: tokenizer directory or file")
flags.DEFINE_string("text", None, "encode: the text")


def _fail(msg: str):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    from dsllm.tokenizer import (DEEPSEEK_LEARNED, DEEPSEEK_MODEL_VOCAB, TokenizerError, load_tokenizer,
                                 train_tokenizer)

    cmd = argv[1] if len(argv) > 1 else None
    try:
        if cmd == "train":
            if not FLAGS.input or not FLAGS.out:
                _fail("train needs --input and --out")
            vocab, learned, pad = FLAGS.vocab_size, FLAGS.learned_tokens, FLAGS.pad_to
            if FLAGS.preset == "deepseek":
                learned, pad, vocab = learned or DEEPSEEK_LEARNED, pad or DEEPSEEK_MODEL_VOCAB, None
            if not vocab and not learned:
                _fail("train needs --vocab_size, --learned_tokens or --preset=deepseek")
            opts = {}
            if FLAGS.backend == "sentencepiece":
                opts = dict(pretokenizer=FLAGS.pretokenizer, character_coverage=FLAGS.character_coverage, max_piece_length=FLAGS.max_piece_length,
                            max_sentence_bytes=FLAGS.max_sentence_bytes,
                            input_sentence_size=FLAGS.input_sentence_size, num_threads=FLAGS.num_threads)
            else:
                opts = dict(min_frequency=FLAGS.min_frequency)
            out = train_tokenizer(FLAGS.input, vocab, FLAGS.out, backend=FLAGS.backend, learned_tokens=learned,
                                  pad_to=pad, text_field=FLAGS.text_field, **opts)
            tok = load_tokenizer(out)
            print(json.dumps(dict(out=out, name=tok.name, vocab_size=tok.vocab_size, bos_id=tok.bos_id,
                                  eos_id=tok.eos_id, pad_id=tok.pad_id)))
        elif cmd in ("encode", "info"):
            if not FLAGS.tokenizer:
                _fail(f"{cmd} needs --tokenizer")
            tok = load_tokenizer(FLAGS.tokenizer)
            if cmd == "info":
                print(json.dumps(dict(name=tok.name, vocab_size=tok.vocab_size, bos_id=tok.bos_id,
                                      eos_id=tok.eos_id, pad_id=tok.pad_id, special_tokens=tok.special_tokens),
                                 ensure_ascii=False, indent=1))
            else:
                ids = tok.encode(FLAGS.text or "")
                print(json.dumps(dict(ids=ids, pieces=[tok.id_to_piece(i) for i in ids]), ensure_ascii=False))
        else:
            _fail(f"unknown or missing subcommand {cmd!r}: use train, encode or info")
    except (TokenizerError, ValueError, OSError) as e:
        _fail(str(e))


if __name__ == "__main__":
    app.run(main)
