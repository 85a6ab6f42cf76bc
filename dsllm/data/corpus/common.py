"""Pieces every stage shares: stage folders, the JSONL reader/writer between stages, the
per-source tally, and the executor factory (datatrove's local, Slurm or Ray executor)."""

from __future__ import annotations

import os

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

STAGES = ("normalize", "exact_dedup", "minhash", "filter", "remix", "tokenize")


def stage_dir(work_dir: str, stage: str) -> str:
    return os.path.join(work_dir, f"{STAGES.index(stage) + 1:02d}_{stage}")


def data_dir(work_dir: str, stage: str) -> str:
    return os.path.join(stage_dir(work_dir, stage), "data")


def logs_dir(work_dir: str, stage: str, phase: str) -> str:
    return os.path.join(work_dir, "logs", stage, phase)


def reader(folder: str) -> JsonlReader:
    return JsonlReader(folder, glob_pattern="*.jsonl.gz")


def writer(folder: str) -> JsonlWriter:
    return JsonlWriter(folder, output_filename="${rank}.jsonl.gz", compression="gzip")


class Tally(PipelineStep):
    """Counts documents and UTF-8 bytes per source and per dump (for the report); passes all on."""

    type = "📊 - STATS"
    name = "dsllm tally"

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            n = len(doc.text.encode("utf-8"))
            src, dump = doc.metadata.get("source", "?"), doc.metadata.get("dump", "?")
            self.stat_update("documents")
            self.stat_update("bytes", value=n)
            self.stat_update(f"docs/source/{src}", f"docs/dump/{dump}")
            self.stat_update(f"bytes/source/{src}", f"bytes/dump/{dump}", value=n)
            if "domain" in doc.metadata:
                self.stat_update(f"docs/domain/{doc.metadata['domain']}")
                self.stat_update(f"bytes/domain/{doc.metadata['domain']}", value=n)
            yield doc


def make_executor(ex_cfg, pipeline, *, tasks: int, logging_dir: str, depends=None, job_name: str = "dsllm",
                  skip_completed: bool = True):
    """One datatrove executor for one phase of a stage. `ex_cfg.kind` picks local, slurm or ray."""
    kind = ex_cfg.kind
    if kind == "local":
        import multiprocess
        from datatrove.executor import LocalPipelineExecutor

        # datatrove starts its multiprocess.Manager (the workers' rank queue) in the default
        # context, fork on Linux; forking a caller that runs threads (a notebook kernel, a
        # pytest-xdist worker) can deadlock the child. Start it the way the worker pool starts.
        multiprocess.set_start_method(ex_cfg.start_method, force=True)
        workers = ex_cfg.workers if ex_cfg.workers > 0 else (os.cpu_count() or 1)
        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=logging_dir,
                                     depends=depends, skip_completed=skip_completed,
                                     start_method=ex_cfg.start_method)
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        s = ex_cfg.slurm
        return SlurmPipelineExecutor(pipeline, tasks=tasks, time=s.time, partition=s.partition,
                                     cpus_per_task=s.cpus_per_task, mem_per_cpu_gb=s.mem_per_cpu_gb,
                                     workers=ex_cfg.workers, job_name=job_name, logging_dir=logging_dir,
                                     depends=depends, skip_completed=skip_completed,
                                     venv_path=s.venv_path or None, sbatch_args=dict(s.sbatch_args) or None)
    if kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        r = ex_cfg.ray
        return RayPipelineExecutor(pipeline, tasks=tasks, workers=ex_cfg.workers, logging_dir=logging_dir,
                                   depends=depends, skip_completed=skip_completed, cpus_per_task=r.cpus_per_task,
                                   mem_per_cpu_gb=r.mem_per_cpu_gb)
    raise ValueError(f"executor.kind must be local, slurm or ray, got {kind!r}")
