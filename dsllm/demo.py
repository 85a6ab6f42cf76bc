"""python -m dsllm.demo [--workdir=runs/demo] [--config.train.steps=...]

The whole pipeline on a CPU in a few minutes, with nothing to download:
  1. the default corpus: Python's own reference manual and standard-library docstrings;
  2. a DeepSeek-style byte-level BPE tokenizer trained on it (4,096 ids);
  3. token shards (ArrayRecord + manifest), 5% held out for validation;
  4. training configs/demo.py (loss falls; validation loss and bits-per-byte; checkpoints);
  5. a greedy continuation of a prompt.
Each stage is skipped when its output already exists, so running it again resumes training.
"""

import logging
import os

from absl import app, flags
from ml_collections import config_flags

from dsllm.logs import setup_logging

_CONFIG = config_flags.DEFINE_config_file("config", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "configs", "demo.py"), "training config", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "where the corpus, tokenizer, shards and run go")

log = logging.getLogger("dsllm.demo")


def main(argv):
    del argv
    setup_logging()
    from dsllm.data.default_corpus import write_default_corpus
    from dsllm.data.prepare import prepare
    from dsllm.tokenizer import load_tokenizer, train_tokenizer
    from dsllm.train.loop import train

    cfg, root = _CONFIG.value, os.path.abspath(_WORKDIR.value)
    os.makedirs(root, exist_ok=True)
    corpus, tok_dir, tokens = (os.path.join(root, n) for n in ("corpus.jsonl", "tokenizer", "tokens"))
    if not os.path.exists(corpus):
        stats = write_default_corpus(corpus)
        log.info("1/5 corpus: %s", stats)
    if not os.path.exists(os.path.join(tok_dir, "tokenizer.model")) and not os.path.exists(
            os.path.join(tok_dir, "tokenizer.json")):
        train_tokenizer([corpus], cfg.model.vocab_size, tok_dir)
        log.info("2/5 tokenizer: %s (%d ids)", tok_dir, cfg.model.vocab_size)
    if not os.path.exists(os.path.join(tokens, "manifest.json")):
        stats = prepare([corpus], load_tokenizer(tok_dir), tokens, validation_fraction=0.05, train_shards=4)
        log.info("3/5 token shards: %s", stats)
    with cfg.unlocked():
        cfg.data.path, cfg.data.tokenizer = tokens, tok_dir
    log.info("4/5 training %s for %d steps in %s", "configs/demo.py", cfg.train.steps, os.path.join(root, "run"))
    final = train(cfg, os.path.join(root, "run"))
    if final is None:
        return
    log.info("validation: loss %.3f nats/token, %.3f bits/byte", final["val_loss"], final["val_bpb"])
    log.info("5/5 greedy sample: %s%s", cfg.train.sample_prompt, final["sample"])


if __name__ == "__main__":
    app.run(main)
