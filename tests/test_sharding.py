"""Sharding: the rule table's placement (golden specs) and mesh-independence of loss and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from dsllm import sharding
from dsllm.losses.pretrain import next_token_loss
from dsllm.train import state as state_lib
from dsllm.train.step import loss_and_grads
from helpers import packed_batch, tiny_config

# tiny config (2 layers, d 64, 4 heads, 2 KV heads, FFN 128, vocab 256) on a 2x2x2 mesh
GOLDEN_2x2x2 = {
    "blocks/attn/wq_DHE": P(None, "fsdp", "tensor", None),
    "blocks/attn/wk_DKE": P(None, "fsdp", "tensor", None),
    "blocks/attn/wv_DKE": P(None, "fsdp", "tensor", None),
    "blocks/attn/wo_HED": P(None, "tensor", None, "fsdp"),
    "blocks/attn_norm/scale": P(None, None),
    "blocks/mlp/w_gate_DF": P(None, "fsdp", "tensor"),
    "blocks/mlp/w_up_DF": P(None, "fsdp", "tensor"),
    "blocks/mlp/w_down_FD": P(None, "tensor", "fsdp"),
    "blocks/mlp_norm/scale": P(None, None),
    "embed_VD": P("tensor", "fsdp"),
    "final_norm/scale": P(None),
    "head_DV": P("fsdp", "tensor"),
}


def _flat(tree):
    return {"/".join(str(k.key) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _same_spec(a: P, b: P) -> bool:
    pad = lambda s, n: tuple(s) + (None,) * (n - len(s))
    n = max(len(a), len(b))
    return pad(a, n) == pad(b, n)


@pytest.fixture(scope="module")
def placed_state():
    cfg = tiny_config(**{"mesh.data": 2, "mesh.fsdp": 2, "mesh.tensor": 2})
    mesh = sharding.make_mesh(2, 2, 2)
    setup = state_lib.make_setup(cfg, mesh)
    return setup, state_lib.init_state(cfg, setup)


def test_parameters_are_placed_by_the_rules(placed_state):
    _, state = placed_state
    params = _flat(state["params"])
    assert set(params) == set(GOLDEN_2x2x2)
    for name, spec in GOLDEN_2x2x2.items():
        assert _same_spec(params[name].sharding.spec, spec), (name, params[name].sharding.spec)
        assert params[name].dtype == jnp.float32


def test_adam_moments_follow_their_parameters(placed_state):
    _, state = placed_state
    adam = state["opt_state"][1][0]  # chain(clip, adamw): adamw's ScaleByAdamState
    for moments in (adam.mu, adam.nu):
        for name, leaf in _flat(moments).items():
            assert _same_spec(leaf.sharding.spec, GOLDEN_2x2x2[name]), name


def test_indivisible_axes_are_replicated_not_split():
    mesh = sharding.make_mesh(1, 1, 8)
    # 2 KV heads cannot split 8 ways: replicated (and logged), not an error
    assert sharding.logical_to_spec(("embed", "kv_heads", "head_dim"), (64, 2, 16), mesh) == P(None, None, None)
    assert sharding.logical_to_spec(("embed", "heads"), (64, 8), mesh) == P(None, "tensor")


def test_mesh_shape_errors_are_clear():
    with pytest.raises(ValueError, match="needs 12 devices"):
        sharding.make_mesh(3, 4, 1)
    with pytest.raises(ValueError, match="at most one axis may be -1"):
        sharding.make_mesh(-1, -1, 1)


@pytest.mark.parametrize("mesh_shape", [(8, 1, 1), (2, 4, 1), (2, 2, 2), (1, 2, 4)])
def test_loss_and_gradients_do_not_depend_on_the_mesh(mesh_shape):
    overrides = {"model.dtype": "float32", "mesh.data": mesh_shape[0], "mesh.fsdp": mesh_shape[1],
                 "mesh.tensor": mesh_shape[2]}
    cfg = tiny_config(**overrides)
    batch = packed_batch(np.random.default_rng(0), 8, 32, 256)
    params = state_lib.init_params(cfg.model, seed=0)  # unsharded reference, on one device
    spec = state_lib.model_spec(cfg.model)
    ref_loss, _, ref_grads = jax.jit(lambda p, b: loss_and_grads(spec.graphdef, next_token_loss, p, b))(params, batch)

    mesh = sharding.make_mesh(*mesh_shape)
    setup = state_lib.make_setup(cfg, mesh)
    placed = jax.device_put(params, setup.state_shardings["params"])
    placed_batch = jax.device_put(batch, setup.batch_sharding)
    with jax.set_mesh(mesh):
        f = jax.jit(lambda p, b: loss_and_grads(spec.graphdef, next_token_loss, p, b),
                    in_shardings=(setup.state_shardings["params"], setup.batch_sharding))
        loss, _, grads = f(placed, placed_batch)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for (name, g), r in zip(_flat(grads).items(), jax.tree.leaves(ref_grads)):
        err = float(jnp.linalg.norm(g - r) / jnp.linalg.norm(r))
        assert err < 1e-5, (name, err)
