"""The example config on a Slurm cluster: same stages, each phase a Slurm job array chained with
datatrove's dependencies. Run the same command; it submits and returns. When the jobs finish,
`python -m dsllm.data.corpus --config=configs/corpus/slurm.py:ROOT --report_only` writes the report.
"""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location("example", os.path.join(os.path.dirname(__file__), "example.py"))
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)


def get_config(root: str = "/tmp/corpus_demo"):
    c = _example.get_config(root)
    c.tasks = 500
    c.executor.kind = "slurm"
    c.executor.workers = -1
    c.executor.slurm.partition = "cpu"
    c.executor.slurm.time = "12:00:00"
    c.executor.slurm.cpus_per_task = 1
    c.executor.slurm.mem_per_cpu_gb = 4
    return c
