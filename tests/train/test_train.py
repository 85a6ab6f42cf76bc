"""The training loop end to end on the tiny config: learning, exact resume, restore on another mesh,
signals, gradient accumulation, CLI errors."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsllm import sharding
from dsllm.losses.pretrain import next_token_loss
from dsllm.train import state as state_lib
from dsllm.train.checkpoint import Checkpointer
from dsllm.train.loop import train
from dsllm.train.step import loss_and_grads
from helpers import REPO, config_path, packed_batch, tiny_config


def losses(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {r["step"]: r["loss"] for r in rows if r["kind"] == "train"}


def run_cfg(dataset, **overrides):
    return tiny_config(**{"data.path": dataset, "train.log_every": 1, "train.eval_every": 0, **overrides})


def test_training_learns_and_writes_final_metrics(tiny_dataset, tmp_path):
    final = train(run_cfg(tiny_dataset, **{"train.steps": 24, "train.ckpt_every": 12}), str(tmp_path))
    trace = losses(tmp_path)
    assert trace[24] < trace[1] - 1.0  # counting sequences are learnable: the loss visibly falls
    assert final["val_loss"] < trace[1] and 0 < final["val_bpb"] < final["val_loss"]
    on_disk = json.load(open(tmp_path / "final_metrics.json"))
    assert on_disk["step"] == 24 and on_disk["tokens"] == 24 * 8 * 32
    assert os.listdir(tmp_path / "tensorboard")
    # a finished run is not trained again
    again = train(run_cfg(tiny_dataset, **{"train.steps": 24, "train.ckpt_every": 12}), str(tmp_path))
    assert again == on_disk


def test_resume_is_exact(tiny_dataset, tmp_path):
    """2N steps straight == N steps, a restart from the checkpoint, N more: the same losses step by step."""
    cfg = run_cfg(tiny_dataset, **{"train.steps": 12, "train.ckpt_every": 100})
    train(cfg, str(tmp_path / "straight"))
    assert train(cfg, str(tmp_path / "resumed"), stop_at_step=6) is None  # as if SIGTERM after step 6
    assert Checkpointer(str(tmp_path / "resumed"), 100, 3).latest_step() == 6
    train(cfg, str(tmp_path / "resumed"))
    straight, resumed = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert sorted(resumed) == list(range(1, 13))
    with open(tmp_path / "resumed" / "metrics.jsonl") as f:  # no step logged twice across the restart
        assert sum('"kind": "train"' in line for line in f) == 12
    for step in range(1, 13):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-6), step


def test_restore_onto_another_mesh(tiny_dataset, tmp_path):
    cfg = run_cfg(tiny_dataset, **{"train.steps": 4, "mesh.fsdp": 8})
    train(cfg, str(tmp_path))
    saved = Checkpointer(str(tmp_path), 1, 3)
    other = tiny_config(**{"mesh.data": 2, "mesh.fsdp": 2, "mesh.tensor": 2})
    setup = state_lib.make_setup(other, sharding.make_mesh(2, 2, 2))
    restored = saved.restore(state_lib.abstract_state(setup))
    original = Checkpointer(str(tmp_path), 1, 3).restore(
        state_lib.abstract_state(state_lib.make_setup(cfg, sharding.make_mesh(1, 8, 1))))
    assert int(restored["step"]) == 4
    wq = restored["params"]["blocks"]["attn"]["wq_DHE"]
    assert wq.sharding.spec[1:3] == ("fsdp", "tensor")
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(original)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("change", [{"model.d_model": 32}, {"train.global_batch": 16}, {"train.seed": 1}])
def test_resume_with_another_model_or_data_order_is_refused(tiny_dataset, tmp_path, change):
    train(run_cfg(tiny_dataset, **{"train.steps": 2}), str(tmp_path))
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"another run.*{key}"):
        train(run_cfg(tiny_dataset, **{"train.steps": 4, **change}), str(tmp_path))


def test_missing_eval_split_fails_before_training_and_eval_can_be_off(tmp_path):
    from dsllm.data.shards import ShardWriter
    from helpers import counting_documents

    path = str(tmp_path / "train_only")
    with ShardWriter(path, tokenizer="counting", vocab_size=256, bos_id=1, eos_id=2, shards={"train": 1}) as w:
        for doc in counting_documents(50, seed=3):
            w.add("train", doc, n_bytes=len(doc))
    with pytest.raises(ValueError, match="no split 'validation'"):
        train(run_cfg(path, **{"train.steps": 2}), str(tmp_path / "run1"))
    assert not (tmp_path / "run1" / "checkpoints").exists()  # refused before any training
    final = train(run_cfg(path, **{"train.steps": 2, "train.eval_batches": 0}), str(tmp_path / "run2"))
    assert "val_loss" not in final and final["step"] == 2


def test_bad_loop_settings_are_refused(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="train.log_every=0 must be at least 1"):
        train(run_cfg(tiny_dataset, **{"train.log_every": 0}), str(tmp_path))


def test_gradient_accumulation_equals_one_big_batch():
    cfg = tiny_config(**{"model.dtype": "float32"})
    spec = state_lib.model_spec(cfg.model)
    params = state_lib.init_params(cfg.model, 0)
    batch = packed_batch(np.random.default_rng(0), 8, 32, 256, docs_per_row=4)
    l1, m1, g1 = loss_and_grads(spec.graphdef, next_token_loss, params, batch, 1)
    l4, m4, g4 = loss_and_grads(spec.graphdef, next_token_loss, params, batch, 4)
    np.testing.assert_allclose(l4, l1, rtol=1e-6)
    np.testing.assert_allclose(m4["nats"], m1["nats"], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g4), jax.tree.leaves(g1)):
        assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) < 1e-5


def _cli(args, **kw):
    env = {**os.environ, "PYTHONPATH": REPO, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "dsllm.train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.parametrize("override, message", [
    ("--config.train.stepz=3", "stepz"),
    ("--config.train.steps=three", "config.train.steps"),
])
def test_bad_overrides_fail_before_any_work(override, message, tmp_path):
    proc = _cli([f"--config={config_path('tiny')}", f"--workdir={tmp_path / 'w'}", override])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and message in out, out
    assert not (tmp_path / "w").exists()  # nothing was started


def test_sigterm_saves_and_the_same_command_resumes(tiny_dataset, tmp_path):
    args = [f"--config={config_path('tiny')}", f"--workdir={tmp_path}", f"--config.data.path={tiny_dataset}",
            "--config.train.steps=100000", "--config.train.log_every=1", "--config.train.ckpt_every=100000",
            "--config.train.eval_every=0"]
    proc = _cli(args)
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until it is training
        if "step 3/" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "checkpoint saved" in out
    step = Checkpointer(str(tmp_path), 100000, 3).latest_step()
    assert step is not None and step >= 3
    # the same command resumes from there (stopped again at once by a short run)
    proc = _cli(args[:-4] + ["--config.train.steps=%d" % (step + 2), "--config.train.log_every=1",
                             "--config.train.eval_every=0", "--config.train.ckpt_every=100000"])
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert "resumed from" in out and f"at step {step}" in out
