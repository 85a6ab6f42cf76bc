"""`run`: launching, skipping, recording and resuming, against a stand-in trainer."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dsllm.scaling.plan import PlanSettings, make_plan, write_plan
from dsllm.scaling.runner import FIELDS, RunError, commands, run_plan, workdir_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plan(tmp_path, base_config, **kw):
    s = PlanSettings(budgets=[1e14, 1e15], per_budget=3, span=8, seq_len=64, vocab=512, base_config=base_config,
                     eval_tokens=1000, **kw)
    plan = make_plan(s)
    # a few steps each: the stand-in's loss depends on M and tokens only, not on steps
    for r in plan["runs"]:
        r["steps"] = r["overrides"]["train.steps"] = 8
        r["overrides"]["train.ckpt_every"] = 2
        r["tokens"] = 8 * r["global_batch"] * 64
    d = str(tmp_path / "plan")
    write_plan(plan, d)
    return d, plan


def _rows(plan_dir):
    with open(os.path.join(plan_dir, "results.csv")) as f:
        return list(csv.DictReader(f))


def _invocations(plan_dir, run):
    path = os.path.join(workdir_of(plan_dir, run), "invocations.txt")
    return len(open(path).readlines()) if os.path.exists(path) else 0


def test_runs_records_and_skips(tmp_path, fake_trainer, base_config):
    d, plan = _plan(tmp_path, base_config)
    assert len(plan["runs"]) == 6
    counts = run_plan(d, fake_trainer, log=lambda *a: None)
    assert counts["finished"] == 6 and counts["failed"] == 0
    rows = _rows(d)
    assert [r["name"] for r in rows] == [r["name"] for r in plan["runs"]]
    assert list(rows[0]) == FIELDS
    for row, run in zip(rows, plan["runs"]):
        metrics = json.load(open(os.path.join(workdir_of(d, run), "final_metrics.json")))
        assert float(row["m"]) == run["m"] and int(row["tokens"]) == metrics["tokens"]
        assert float(row["compute"]) == pytest.approx(run["m"] * metrics["tokens"])
        assert float(row["loss"]) == pytest.approx(metrics["val_bpb"]) and row["loss_unit"] == "bits-per-byte"
        assert float(row["val_loss"]) == pytest.approx(metrics["val_loss"])
        assert float(row["budget"]) == run["budget"]
        # the trainer got the plan's overrides
        cmd = open(os.path.join(workdir_of(d, run), "invocations.txt")).read()
        assert f"--config.model.d_model={run['d_model']}" in cmd and f"--config={base_config}" in cmd
    counts = run_plan(d, fake_trainer, log=lambda *a: None)
    assert counts["skipped"] == 6 and counts["finished"] == 0
    assert all(_invocations(d, r) == 1 for r in plan["runs"])  # nothing relaunched


def test_crashed_run_resumes_from_its_checkpoint(tmp_path, fake_trainer, base_config, monkeypatch):
    d, plan = _plan(tmp_path, base_config)
    monkeypatch.setenv("FAKE_CRASH_AT_STEP", "5")  # checkpoints at 2, 4: resume from 4
    with pytest.raises(RunError, match="exit code 3"):
        run_plan(d, fake_trainer, log=lambda *a: None)
    first = plan["runs"][0]
    assert not os.path.exists(os.path.join(d, "results.csv")) or first["name"] not in {r["name"] for r in _rows(d)}
    monkeypatch.delenv("FAKE_CRASH_AT_STEP")
    counts = run_plan(d, fake_trainer, log=lambda *a: None)
    assert counts["failed"] == 0 and len(_rows(d)) == 6
    steps = [int(s) for s in open(os.path.join(workdir_of(d, first), "steps_run.txt"))]
    assert steps == [1, 2, 3, 4, 5, 5, 6, 7, 8]  # steps 1-5, crash, resume after the step-4 checkpoint
    assert "resuming from step 4" in open(os.path.join(workdir_of(d, first), "train.log")).read()


def test_keep_going_runs_the_rest_after_a_failure(tmp_path, fake_trainer, base_config, monkeypatch):
    d, plan = _plan(tmp_path, base_config)
    monkeypatch.setenv("FAKE_CRASH_AT_STEP", "3")  # every run crashes once
    with pytest.raises(RunError, match="6 run"):
        run_plan(d, fake_trainer, keep_going=True, log=lambda *a: None)
    assert all(_invocations(d, r) == 1 for r in plan["runs"])


def test_a_failure_stops_new_launches(tmp_path, fake_trainer, base_config, monkeypatch):
    d, plan = _plan(tmp_path, base_config)
    monkeypatch.setenv("FAKE_CRASH_AT_STEP", "3")
    with pytest.raises(RunError, match="1 run"):
        run_plan(d, fake_trainer, log=lambda *a: None)
    assert [_invocations(d, r) for r in plan["runs"]] == [1, 0, 0, 0, 0, 0]


def test_parallel_gives_the_same_results(tmp_path, fake_trainer, base_config):
    d, plan = _plan(tmp_path, base_config)
    assert run_plan(d, fake_trainer, parallel=3, log=lambda *a: None)["finished"] == 6
    assert sorted(r["name"] for r in _rows(d)) == sorted(r["name"] for r in plan["runs"])


def test_collect_records_runs_finished_elsewhere(tmp_path, fake_trainer, base_config):
    d, plan = _plan(tmp_path, base_config)
    cmds = commands(d, fake_trainer)
    for cmd in cmds[:2]:  # as a job array would
        subprocess.run(cmd, check=True, capture_output=True)
    counts = run_plan(d, fake_trainer, launch=False, log=lambda *a: None)
    assert counts["recorded"] == 2 and counts["not_started"] == 4
    assert len(_rows(d)) == 2


def test_stop_after_starts_nothing_new(tmp_path, fake_trainer, base_config):
    d, _ = _plan(tmp_path, base_config)
    counts = run_plan(d, fake_trainer, stop_after_s=0, log=lambda *a: None)
    assert counts["not_started"] == 6 and counts["finished"] == 0


def test_bad_final_metrics_is_reported(tmp_path, fake_trainer, base_config):
    d, plan = _plan(tmp_path, base_config)
    wd = workdir_of(d, plan["runs"][0])
    os.makedirs(wd)
    json.dump({"step": 8}, open(os.path.join(wd, "final_metrics.json"), "w"))
    with pytest.raises(RunError, match="lacks"):
        run_plan(d, fake_trainer, log=lambda *a: None)


def _start_runner_and_wait_for_a_checkpoint(d, plan, fake_trainer):
    env = dict(os.environ, PYTHONPATH=ROOT, FAKE_STEP_SLEEP="0.3")
    runner = subprocess.Popen([sys.executable, "-m", "dsllm.scaling", "run", f"--plan={d}", "--parallel=2",
                               f"--trainer={' '.join(fake_trainer)}"], env=env, cwd=ROOT, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = workdir_of(d, plan["runs"][0])
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(first, "ckpt.json")) and time.time() < deadline:
        time.sleep(0.05)
    return runner, first


@pytest.mark.parametrize("how", ["SIGTERM to the runner", "SIGINT to the group (Ctrl-C)"])
def test_a_stopped_runner_stops_its_runs_once_and_they_resume(tmp_path, fake_trainer, base_config, how):
    d, plan = _plan(tmp_path, base_config)
    runner, first = _start_runner_and_wait_for_a_checkpoint(d, plan, fake_trainer)
    if how.startswith("SIGTERM"):
        runner.send_signal(signal.SIGTERM)
    else:
        os.killpg(runner.pid, signal.SIGINT)
    out, _ = runner.communicate(timeout=30)
    assert runner.returncode == 130, out
    assert "resume from their checkpoints" in out
    second = workdir_of(d, plan["runs"][1])
    for wd in (first, second):  # both runs in flight got exactly one signal, and saved where they stopped
        assert open(os.path.join(wd, "signals.txt")).read().split() == [how.split()[0]]
        assert not os.path.exists(os.path.join(wd, "final_metrics.json"))
        steps = [int(x) for x in open(os.path.join(wd, "steps_run.txt"))]
        assert json.load(open(os.path.join(wd, "ckpt.json")))["step"] == steps[-1]
    counts = run_plan(d, fake_trainer, log=lambda *a: None)
    assert counts["finished"] == 6
    assert "resuming from step" in open(os.path.join(first, "train.log")).read()
    steps = [int(x) for x in open(os.path.join(first, "steps_run.txt"))]
    assert steps == list(range(1, plan["runs"][0]["steps"] + 1))  # no step lost, none repeated
