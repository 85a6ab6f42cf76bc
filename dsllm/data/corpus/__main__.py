"""`python -m dsllm.data.corpus --config=configs/corpus/example.py [--stage=...] [--config.x=y]`

Runs the corpus chain (normalize, exact_dedup, minhash, filter, remix, tokenize) or the stages
named by --stage (comma-separated), then writes <work_dir>/report.json. `--report_only`
rebuilds the report from the logs (e.g. after Slurm jobs finished).
"""

from __future__ import annotations

import json
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "corpus config file (configs/corpus/*.py)", lock_config=True)
flags.DEFINE_string("stage", None, "comma-separated stages to run (default: every enabled stage)")
flags.DEFINE_bool("resume", False, "keep a stage's completed tasks instead of redoing the stage")
flags.DEFINE_bool("report_only", False, "only rebuild report.json from the logs")


def main(argv):
    del argv
    from dsllm.data.corpus.pipeline import CorpusConfigError, run
    from dsllm.data.corpus.reader import CorpusInputError
    from dsllm.data.corpus.report import write_report

    cfg = FLAGS.config
    if cfg is None:
        print("error: give --config=configs/corpus/NAME.py", file=sys.stderr)
        sys.exit(2)
    try:
        if FLAGS.report_only:
            path = write_report(cfg.work_dir, cfg)
        else:
            stages = [s.strip() for s in FLAGS.stage.split(",")] if FLAGS.stage else None
            path = run(cfg, stages, resume=FLAGS.resume)
    except (CorpusConfigError, CorpusInputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if path is None:
        print(f"submitted the stages as one chain of {cfg.executor.kind} jobs; when they finish, write the "
              f"report with the same command and --report_only")
        return
    with open(path) as f:
        rep = json.load(f)
    for stage, e in rep["stages"].items():
        print(f"{stage:12s} in {e.get('documents_in', '?'):>9} out {e.get('documents_out', '?'):>9}")
    print(f"report: {path}")


if __name__ == "__main__":
    app.run(main)
