"""The model's `pallas` path under a mesh: each device's rows and heads go to the kernel through
shard_map. The Mosaic GPU interpreter cannot run on several CPU devices at once (its shared-memory
bookkeeping asserts), so here the kernel is stood in for by the reference attention
(dsllm/kernels/reference.py, what tests/kernels checks the kernels against): this checks the
sharding plumbing (specs, GQA grouping with heads split over `tensor`), not the kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsllm.kernels.flash_attention as flash
from dsllm.kernels.mgpu_common import Blocks
from dsllm.kernels.plan import make_plan
from dsllm import sharding
from dsllm.kernels.reference import reference_attention
from dsllm.losses.pretrain import next_token_loss
from dsllm.train import state as state_lib
from dsllm.train.step import loss_and_grads
from helpers import packed_batch, tiny_config


# mesh (data, fsdp, tensor), KV heads, and the [rows, q heads, kv heads] each kernel call must see
CASES = [((2, 2, 2), 2, (2, 2, 1)),   # rows over data x fsdp, heads over tensor
         ((2, 2, 2), 1, (2, 2, 1)),   # one KV head: it cannot split, but 2 query heads per KV head still can
         ((1, 2, 4), 2, (4, 4, 2))]   # 2 KV heads cannot split 4 ways: query heads stay whole with them


@pytest.mark.parametrize("mesh_shape, n_kv_heads, local_shape", CASES)
def test_pallas_path_sharded_matches_xla(monkeypatch, mesh_shape, n_kv_heads, local_shape):
    seen = []

    def per_device_kernel(q, k, v, segment_ids, *, causal, plan):
        seen.append((q.shape[0], q.shape[2], k.shape[2]))
        out = reference_attention(q, k, v, segment_ids, causal=causal).astype(q.dtype)
        # The plan the model made once for all layers must arrive sharded like the segment ids:
        # equal to the one made from this device's rows (else the output turns NaN).
        own = make_plan(segment_ids, q.shape[0], q.shape[1], causal=causal)
        same = jnp.all(jnp.stack([jnp.array_equal(a, b) for a, b in zip(jax.tree.leaves(plan),
                                                                         jax.tree.leaves(own))]))
        return jnp.where(same, out, jnp.nan)

    monkeypatch.setattr(flash, "flash_attention", per_device_kernel)
    shape = {"model.n_heads": 4, "model.n_kv_heads": n_kv_heads, "model.dtype": "float32"}
    batch = packed_batch(np.random.default_rng(0), 8, 32, 256, docs_per_row=4)
    results = {}
    for impl in ("xla", "pallas"):
        cfg = tiny_config(**shape, **{"model.attention": impl})
        mesh = sharding.make_mesh(*mesh_shape)
        setup = state_lib.make_setup(cfg, mesh)
        params = jax.device_put(state_lib.init_params(cfg.model, 0), setup.state_shardings["params"])
        with jax.set_mesh(mesh):
            f = jax.jit(lambda p, b: loss_and_grads(setup.spec.graphdef, next_token_loss, p, b))
            results[impl] = jax.device_get(f(params, jax.device_put(batch, setup.batch_sharding)))
    assert seen and set(seen) == {local_shape}, seen
    (l_ref, _, g_ref), (l, _, g) = results["xla"], results["pallas"]
    np.testing.assert_allclose(l, l_ref, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) < 1e-4


def _kernel_calls(jaxpr, inside="", with_refs=False):
    """[(enclosing primitives, output shapes)] of every Mosaic GPU kernel call (mpmd_map) in a
    jaxpr; with_refs, also whether the call takes a mutable array ref (the fused backward's dQ)."""
    calls = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "mpmd_map":
            shapes = tuple(v.aval.shape for v in eqn.outvars)
            refs = any("Ref" in type(v.aval).__name__ for v in eqn.invars)
            calls.append((inside, shapes, refs) if with_refs else (inside, shapes))
            continue
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    sub = sub.jaxpr
                if isinstance(sub, jax.extend.core.Jaxpr):
                    calls += _kernel_calls(sub, inside + "/" + eqn.primitive.name, with_refs)
    return calls


def _compiled_kernels_gradient_jaxpr(monkeypatch, cfg):
    """The jaxpr of the loss gradient on one device, on a packed batch, with the compiled (not
    interpreted) kernels: traced, not run, so the kernel calls are what the GPU runs."""
    import jax.extend  # noqa: F401  (_kernel_calls reads jax.extend.core)

    real = flash.flash_attention
    monkeypatch.setattr(flash, "flash_attention", lambda *a, **kw: real(*a, interpret=False, **kw))
    mesh = sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    setup = state_lib.make_setup(cfg, mesh)
    params = state_lib.init_params(cfg.model, 0)
    batch = packed_batch(np.random.default_rng(0), 2, cfg.train.seq_len, 256, docs_per_row=3)
    with jax.set_mesh(mesh):
        return jax.make_jaxpr(lambda p, b: loss_and_grads(setup.spec.graphdef, next_token_loss, p, b))(
            params, batch)


@pytest.mark.parametrize("remat", ["dots_attn", "qkv_attn"])
def test_remat_keeps_the_attention_forward_out_of_the_backward(monkeypatch, remat):
    """The policies that keep attention results must keep our forward kernel's out and lse, so
    that the backward pass runs only the dQ and dK/dV kernels. Traced, not run: the compiled
    (not interpreted) kernels, whose jaxpr is what the GPU runs."""
    cfg = tiny_config(**{"model.attention": "pallas", "model.d_model": 256, "model.n_heads": 4,
                         "model.n_kv_heads": 2, "model.remat": remat})
    jaxpr = _compiled_kernels_gradient_jaxpr(monkeypatch, cfg)
    m = Blocks().seq_multiple   # the kernels see the sequence padded to this
    B, S, H, E = 2, -(-cfg.train.seq_len // m) * m, 4, 64
    forward_outs = ((B, S, H, E), (B, H, S))
    calls = _kernel_calls(jaxpr.jaxpr)
    # One forward kernel, in the layers' forward scan (not under remat2, the backward's
    # recomputation); the backward runs only dQ ([B,S,H,E]) and dK/dV (two [B,S,K,E]), or the
    # fused kernel (dK and dV too: its dQ goes to an accumulator ref), the two branches of the
    # cond of Blocks.backward "auto".
    forwards = [inside for inside, shapes in calls if shapes == forward_outs]
    assert len(forwards) == 1 and "remat" not in forwards[0], calls
    dk_dv = ((B, S, 2, E), (B, S, 2, E))
    assert sorted(shape for _, shape in calls) == sorted(
        [forward_outs, ((B, S, H, E),), dk_dv, dk_dv]), calls


def test_remat_keeps_the_attention_forward_under_shard_map(monkeypatch):
    """The same under a 2x2x2 mesh, where each device's kernel calls run inside shard_map: the
    gradient launches the forward once with `dots_attn` and twice with `full` remat."""
    import jax.extend  # noqa: F401

    real = flash.flash_attention
    monkeypatch.setattr(flash, "flash_attention", lambda *a, **kw: real(*a, interpret=False, **kw))
    batch = packed_batch(np.random.default_rng(1), 8, 32, 256, docs_per_row=3)

    def calls(remat):
        cfg = tiny_config(**{"model.attention": "pallas", "model.d_model": 256, "model.n_heads": 4,
                             "model.n_kv_heads": 2, "model.remat": remat})
        mesh = sharding.make_mesh(2, 2, 2)
        setup = state_lib.make_setup(cfg, mesh)
        params = state_lib.init_params(cfg.model, 0)
        with jax.set_mesh(mesh):
            jaxpr = jax.make_jaxpr(lambda p, b: loss_and_grads(setup.spec.graphdef, next_token_loss, p, b))(
                params, batch)
        found = _kernel_calls(jaxpr.jaxpr)
        assert all("shard_map" in inside for inside, _ in found), found
        return len(found)

    # forward, dQ, dK/dV and the fused backward (the cond of Blocks.backward "auto"), and with
    # `full` the forward again
    assert calls("dots_attn") == 4 and calls("full") == 5


@pytest.mark.parametrize("backward, backward_calls", [("auto", {"dQ", "dK/dV", "fused"}),
                                                      ("split", {"dQ", "dK/dV"}),
                                                      ("fused", {"fused"})])
def test_attention_backward_config_picks_the_backward_kernels(monkeypatch, backward, backward_calls):
    """model.attention_backward reaches the kernels through the model's plan (head_dim 128, where
    the fused kernel exists): `auto` traces both backwards under a cond, the others one."""
    cfg = tiny_config(**{"model.attention": "pallas", "model.d_model": 256, "model.n_heads": 2,
                         "model.n_kv_heads": 1, "model.remat": "dots_attn",
                         "model.attention_backward": backward})
    jaxpr = _compiled_kernels_gradient_jaxpr(monkeypatch, cfg)
    B, S, H, K, E = 2, -(-cfg.train.seq_len // Blocks().seq_multiple) * Blocks().seq_multiple, 2, 1, 128
    # by outputs; the fused kernel returns dK and dV like the dK/dV kernel and also takes the
    # dQ accumulator (a mutable ref) among its inputs
    names = {((B, S, H, E), (B, H, S)): "forward", ((B, S, H, E),): "dQ",
             ((B, S, K, E), (B, S, K, E)): "dK/dV"}
    found = [(inside, "fused" if fused else names[shapes])
             for inside, shapes, fused in _kernel_calls(jaxpr.jaxpr, with_refs=True)]
    assert {name for _, name in found} - {"forward"} == backward_calls, found
    assert all(("cond" in inside) == (backward == "auto") for inside, name in found if name != "forward")


def test_unknown_attention_backward_is_refused():
    cfg = tiny_config(**{"model.attention_backward": "fast"})
    with pytest.raises(ValueError, match="model.attention_backward='fast'"):
        state_lib.init_params(cfg.model, 0)
