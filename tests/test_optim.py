"""The DeepSeek multi-step schedule, cosine, and which weights are decayed."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dsllm import optim
from dsllm.train import state as state_lib
from helpers import tiny_config


def test_multistep_values_at_the_boundaries():
    peak, total = 4.2e-4, 10_000
    lr = optim.multistep_schedule(peak, warmup_steps=2000, total_steps=total)
    at = lambda s: float(lr(s))
    assert at(0) == pytest.approx(peak / 2000)
    assert at(999) == pytest.approx(peak / 2)
    assert at(1999) == pytest.approx(peak)          # warm-up ends at the peak
    assert at(2000) == pytest.approx(peak)
    assert at(7999) == pytest.approx(peak)          # the peak until 80% of training
    assert at(8000) == pytest.approx(0.316 * peak)  # 31.6% from 80%
    assert at(8999) == pytest.approx(0.316 * peak)
    assert at(9000) == pytest.approx(0.1 * peak)    # 10% from 90%
    assert at(9999) == pytest.approx(0.1 * peak)


def test_cosine_schedule_warms_up_and_decays_to_the_floor():
    lr = optim.cosine_schedule(1e-3, warmup_steps=10, total_steps=100, min_lr_ratio=0.1)
    assert float(lr(10)) == pytest.approx(1e-3)
    assert float(lr(100)) == pytest.approx(1e-4)
    values = np.array([float(lr(s)) for s in range(10, 101)])
    assert np.all(np.diff(values) <= 1e-12)


def test_unknown_schedule_is_an_error():
    cfg = tiny_config(**{"optim.schedule": "linear"})
    with pytest.raises(ValueError, match="multistep or cosine"):
        optim.make_schedule(cfg.optim, 100)


def test_weight_decay_skips_norm_gains_only():
    cfg = tiny_config()
    spec = state_lib.model_spec(cfg.model)
    mask = optim.decay_mask(spec.axes)
    assert mask["blocks"]["attn_norm"]["scale"] is False
    assert mask["final_norm"]["scale"] is False
    assert mask["blocks"]["attn"]["wq_DHE"] and mask["embed_VD"] and mask["head_DV"]

    # and the optimizer applies it: with zero gradients only decayed weights move
    tx, _ = optim.make_optimizer(cfg.optim, 100, spec.axes)
    params = state_lib.init_params(cfg.model, 0)
    zeros = jax_zeros_like(params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert float(jnp.abs(updates["final_norm"]["scale"]).max()) == 0.0
    assert float(jnp.abs(updates["head_DV"]).max()) > 0.0


def jax_zeros_like(tree):
    return optax.tree.zeros_like(tree) if hasattr(optax, "tree") else optax.tree_utils.tree_zeros_like(tree)
