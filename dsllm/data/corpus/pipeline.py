"""Runs the corpus chain, or one stage of it, on a datatrove executor.

Each stage reads the previous enabled stage's output (`<work_dir>/NN_<stage>/data/*.jsonl.gz`)
and writes its own, so a stage can be re-run without redoing the ones before it. Locally the
stages run one after another, each sized by the files its input holds. On Slurm or Ray, where
`run()` submits and returns, every phase of every requested stage is built at once and chained
with datatrove's `depends` (each stage's first phase waits for the previous stage's last), with
`cfg.tasks` tasks each since the inputs do not exist yet; the report is written afterwards with
`--report_only`. Re-running a stage clears its outputs first unless `resume=True` (then
datatrove skips the tasks it already completed).
"""

from __future__ import annotations

import os
import shutil

from dsllm.data.corpus import exact_dedup, minhash_dedup, quality, remix, tokenize
from dsllm.data.corpus.common import STAGES, Tally, data_dir, logs_dir, make_executor, stage_dir, writer
from dsllm.data.corpus.normalize import Normalizer
from dsllm.data.corpus.reader import CorpusReader, expand_inputs
from dsllm.data.corpus.report import write_report


class CorpusConfigError(ValueError):
    """The corpus config is incomplete or inconsistent."""


def enabled(cfg, stage: str) -> bool:
    if stage == "normalize":
        return True  # the stage that reads raw input always runs (normalization itself can be off)
    if stage == "remix":
        return bool(cfg.remix.enabled and cfg.remix.weights)
    return bool(cfg[stage if stage != "filter" else "filters"].enabled)


def input_dir(cfg, stage: str, deferred: bool = False) -> str:
    """The data directory a stage reads: the output of the closest earlier enabled stage (which,
    when `deferred`, a job submitted before this one will write)."""
    for prev in reversed(STAGES[:STAGES.index(stage)]):
        if enabled(cfg, prev):
            d = data_dir(cfg.work_dir, prev)
            if deferred:
                return d
            if not os.path.isdir(d) or not any(f.endswith(".jsonl.gz") for f in os.listdir(d)):
                raise CorpusConfigError(f"stage {stage!r} reads {d}, which holds no output: run stage {prev!r} first")
            return d
    raise CorpusConfigError(f"stage {stage!r} has no earlier stage")


def normalize_phases(cfg, out_dir: str, tasks: int):
    n = cfg.normalize
    steps = [CorpusReader(list(cfg.inputs), text_field=cfg.text_field, id_field=cfg.id_field, on_error=cfg.on_error)]
    if n.enabled:
        steps.append(Normalizer(form=n.form or None, max_blank_lines=n.max_blank_lines, min_chars=n.min_chars))
    return [("normalize", steps + [Tally(), writer(out_dir)], tasks)]


def stage_phases(cfg, stage: str, deferred: bool = False):
    out = data_dir(cfg.work_dir, stage)
    root = stage_dir(cfg.work_dir, stage)
    if stage == "normalize":
        n_files = len(expand_inputs(list(cfg.inputs)))
        return normalize_phases(cfg, out, max(1, min(cfg.tasks, n_files)))
    src = input_dir(cfg, stage, deferred)
    n_files = cfg.tasks if deferred else len([f for f in os.listdir(src) if f.endswith(".jsonl.gz")])
    tasks = max(1, min(cfg.tasks, n_files))
    module = {"exact_dedup": exact_dedup, "minhash": minhash_dedup, "filter": quality, "remix": remix,
              "tokenize": tokenize}[stage]
    return module.phases(cfg, src, out, root, tasks)


def run_stage(cfg, stage: str, *, resume: bool = False, depends=None, deferred: bool = False, launch: bool = True):
    """Builds a stage's executors (chained after `depends`) and runs them, or only returns the
    last one when `launch` is False (so that a later stage can chain after it)."""
    if stage not in STAGES:
        raise CorpusConfigError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if not cfg.work_dir:
        raise CorpusConfigError("config.work_dir is not set")
    if not resume:
        for d in (stage_dir(cfg.work_dir, stage), os.path.join(cfg.work_dir, "logs", stage)):
            if os.path.exists(d):
                shutil.rmtree(d)
    executor = depends
    for phase, pipeline, tasks in stage_phases(cfg, stage, deferred):
        executor = make_executor(cfg.executor, pipeline, tasks=tasks,
                                 logging_dir=logs_dir(cfg.work_dir, stage, phase), depends=executor,
                                 job_name=f"dsllm-{stage}-{phase}")
    if launch:
        executor.run()
    return executor


def run(cfg, stages: list[str] | None = None, *, resume: bool = False) -> str | None:
    """Runs `stages` (default: every enabled stage in order) and writes `<work_dir>/report.json`
    (returns its path); on Slurm or Ray submits the chain and returns None."""
    validate(cfg)
    todo = stages or [s for s in STAGES if enabled(cfg, s)]
    for stage in todo:  # every check before any work
        if stage not in STAGES:
            raise CorpusConfigError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        if not enabled(cfg, stage):
            raise CorpusConfigError(f"stage {stage!r} is disabled in the config")
    if cfg.executor.kind == "local":
        for stage in todo:
            run_stage(cfg, stage, resume=resume)
        return write_report(cfg.work_dir, cfg)
    last = None
    for i, stage in enumerate(todo):  # one dependent chain; running the last executor submits it all
        last = run_stage(cfg, stage, resume=resume, depends=last, deferred=i > 0, launch=i == len(todo) - 1)
    return None


def validate(cfg):
    if not cfg.inputs:
        raise CorpusConfigError("config.inputs is empty: list {source, dump, paths} entries")
    if not cfg.work_dir:
        raise CorpusConfigError("config.work_dir is not set")
    if cfg.on_error not in ("raise", "skip"):
        raise CorpusConfigError(f"on_error must be 'raise' or 'skip', got {cfg.on_error!r}")
    if cfg.remix.unit not in ("bytes", "documents"):
        raise CorpusConfigError(f"remix.unit must be 'bytes' or 'documents', got {cfg.remix.unit!r}")
    if cfg.tokenize.enabled and not cfg.tokenize.tokenizer:
        raise CorpusConfigError("tokenize.tokenizer is not set (or set tokenize.enabled=False)")
    m = cfg.minhash
    if min(m.n_grams, m.num_buckets, m.hashes_per_bucket) < 1:
        raise CorpusConfigError("minhash.n_grams, num_buckets and hashes_per_bucket must be >= 1")
    if cfg.filters.enabled:
        try:
            quality.build_filters(cfg.filters)
        except (TypeError, ValueError) as e:
            raise CorpusConfigError(str(e)) from None
    if cfg.tokenize.enabled:
        from dsllm.tokenizer import TokenizerError, load_tokenizer

        try:
            load_tokenizer(cfg.tokenize.tokenizer)
        except TokenizerError as e:
            raise CorpusConfigError(f"tokenize.tokenizer: {e}") from None
