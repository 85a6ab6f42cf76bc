"""`run` with the real `python -m dsllm.train` on the CPU: a tiny plan (two budgets, three sizes,
a few dozen steps each) end to end, including a run killed mid-way and resumed from its
checkpoint. About a minute and a half on two cores: marked slow."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dsllm.scaling.plan import PlanSettings, make_plan, write_plan
from dsllm.scaling.runner import run_plan, workdir_of
from dsllm.scaling.table import read_rows

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tiny_plan_with_the_real_trainer(tmp_path, byte_dataset, base_config, monkeypatch):
    pytest.importorskip("jax")
    pytest.importorskip("dsllm.train.loop")
    # the runs train on this process's one CPU device, not the test session's 8 fake ones (the
    # batches of 9-12 sequences are not multiples of 8)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    # sizes centred on 6.9e5 FLOPs/token at 1e10 (the paper's law would ask for models below
    # the smallest real one at such budgets): 1-2 layers of width 64-128, 14-57 steps each
    s = PlanSettings(budgets=[1e10, 3e10], per_budget=3, span=4, seq_len=64, base_config=base_config,
                     vocab=258, data_path=byte_dataset, m_law=(6.9e5 / 1e10**0.5, 0.5), m_law_source="test")
    plan = make_plan(s)
    assert len(plan["runs"]) == 6 and len({r["budget"] for r in plan["runs"]}) == 2
    d = str(tmp_path / "plan")
    write_plan(plan, d)
    first = plan["runs"][0]
    wd = workdir_of(d, first)
    ckpts = os.path.join(wd, "checkpoints")

    # start the runner and kill it, trainer included, once the first run has a checkpoint
    runner = subprocess.Popen([sys.executable, "-m", "dsllm.scaling", "run", f"--plan={d}"], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and runner.poll() is None and \
            not (os.path.isdir(ckpts) and any(n.isdigit() for n in os.listdir(ckpts))):
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    assert os.path.isdir(ckpts) and os.listdir(ckpts), f"no checkpoint; log:\n{open(os.path.join(wd, 'train.log')).read()}"
    assert not os.path.exists(os.path.join(wd, "final_metrics.json")), "the run finished before it was killed"
    saved = sorted(int(n) for n in os.listdir(ckpts) if n.isdigit())
    assert saved and saved[-1] < first["steps"]

    counts = run_plan(d, parallel=2, log=lambda *a: None)
    assert counts["finished"] == 6 and counts["failed"] == 0
    rows = read_rows(os.path.join(d, "results.csv"))
    assert sorted(r["name"] for r in rows) == sorted(r["name"] for r in plan["runs"])
    for row in rows:
        run = next(r for r in plan["runs"] if r["name"] == row["name"])
        metrics = json.load(open(os.path.join(workdir_of(d, run), "final_metrics.json")))
        assert metrics["step"] == run["steps"] and int(row["tokens"]) == run["tokens"]
        assert metrics["m"] == run["m"]  # the trainer's M is the plan's
        assert 0 < float(row["loss"]) < 8.1 and float(row["loss"]) == metrics["val_bpb"]  # below 8 bits/byte: learnt
    log = open(os.path.join(wd, "train.log")).read()
    assert f"at step {saved[-1]}" in log.split("###")[-1]  # the second launch resumed from the checkpoint

    # a finished plan run again launches nothing
    assert run_plan(d, log=lambda *a: None)["skipped"] == 6
