"""The model: causality, packing, remat, GQA, the fused loss, parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from dsllm.config import load_config
from dsllm.losses.cross_entropy import chunked_cross_entropy
from dsllm.losses.pretrain import next_token_loss
from dsllm.model.attention import check_segments, xla_attention
from dsllm.model.transformer import REMAT_POLICIES, Transformer
from dsllm.train.state import flops_per_token, model_spec
from helpers import config_path, packed_batch, tiny_config


def make_model(**overrides):
    cfg = tiny_config(**overrides)
    return Transformer(cfg.model, nnx.Rngs(params=0)), cfg


def forward(model, tokens, seg=None, pos=None):
    B, S = tokens.shape
    seg = jnp.ones((B, S), jnp.int32) if seg is None else seg
    pos = jnp.broadcast_to(jnp.arange(S), (B, S)) if pos is None else pos
    return model(jnp.asarray(tokens), jnp.asarray(seg), jnp.asarray(pos))


def test_future_tokens_do_not_change_past_logits():
    model, _ = make_model()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 32)).astype(np.int32)
    b = a.copy()
    b[:, 20:] = rng.integers(0, 256, (2, 12))
    la, lb = forward(model, a), forward(model, b)
    np.testing.assert_allclose(la[:, :20], lb[:, :20], atol=1e-5)
    assert not np.allclose(la[:, 20:], lb[:, 20:], atol=1e-3)


def test_packed_row_equals_documents_run_one_by_one():
    model, _ = make_model()
    rng = np.random.default_rng(1)
    lengths = [7, 13, 12]  # the last document crosses nothing; 32 positions in all
    docs = [rng.integers(0, 256, n).astype(np.int32) for n in lengths]
    row = np.concatenate(docs)[None]
    seg = np.concatenate([np.full(n, i + 1) for i, n in enumerate(lengths)])[None].astype(np.int32)
    pos = np.concatenate([np.arange(n) for n in lengths])[None].astype(np.int32)
    packed = forward(model, row, seg, pos)
    start = 0
    for doc in docs:
        alone = forward(model, doc[None])
        np.testing.assert_allclose(packed[0, start:start + len(doc)], alone[0], atol=2e-4, rtol=2e-3)
        start += len(doc)


@pytest.mark.parametrize("policy", [p for p in REMAT_POLICIES if p != "none"])
def test_remat_policies_give_the_same_loss_and_gradients(policy):
    rng = np.random.default_rng(2)
    batch = {k: jnp.asarray(v) for k, v in packed_batch(rng, 4, 32, 256).items()}

    def loss_and_grad(remat):
        # float32 compute: rematerialisation must then reproduce the gradients to rounding
        model, _ = make_model(**{"model.remat": remat, "model.dtype": "float32"})
        graphdef, params = nnx.split(model)
        f = lambda p: next_token_loss(nnx.merge(graphdef, p), batch)[0]
        return jax.value_and_grad(f)(params)

    (l0, g0), (l1, g1) = loss_and_grad("none"), loss_and_grad(policy)
    np.testing.assert_allclose(l0, l1, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a)) < 1e-5


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_gqa_shapes_and_output(n_kv_heads):
    model, cfg = make_model(**{"model.n_kv_heads": n_kv_heads})
    E = cfg.model.d_model // cfg.model.n_heads
    assert model.blocks.attn.wq_DHE.shape == (cfg.model.n_layers, cfg.model.d_model, cfg.model.n_heads, E)
    assert model.blocks.attn.wk_DKE.shape == (cfg.model.n_layers, cfg.model.d_model, n_kv_heads, E)
    logits = forward(model, np.zeros((2, 32), np.int32))
    assert logits.shape == (2, 32, cfg.model.vocab_size) and np.isfinite(logits).all()


def test_gqa_equals_mha_with_repeated_kv_heads():
    rng = np.random.default_rng(3)
    B, S, H, K, E = 2, 16, 4, 2, 8
    q = jnp.asarray(rng.normal(size=(B, S, H, E)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(B, S, K, E)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(B, S, K, E)), jnp.float32)
    seg = jnp.ones((B, S), jnp.int32)
    gqa = xla_attention(q, k, v, seg)
    mha = xla_attention(q, jnp.repeat(k, H // K, axis=2), jnp.repeat(v, H // K, axis=2), seg)
    np.testing.assert_allclose(gqa, mha, atol=1e-5)


def test_n_kv_heads_must_divide_n_heads():
    with pytest.raises(ValueError, match="must divide n_heads"):
        make_model(**{"model.n_kv_heads": 3})


def test_cudnn_refuses_packed_rows_and_accepts_padding():
    check_segments(np.array([[1, 1, 1, 0, 0]]), "cudnn")
    with pytest.raises(ValueError, match="cannot honour"):
        check_segments(np.array([[1, 1, 2, 2, 0]]), "cudnn")
    check_segments(np.array([[1, 1, 2, 2, 0]]), "xla")


def test_chunked_cross_entropy_matches_full_logits():
    rng = np.random.default_rng(4)
    B, S, D, V = 2, 32, 16, 50
    h = jnp.asarray(rng.normal(size=(B, S, D)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(D, V)) * 0.3, jnp.float32)
    t = jnp.asarray(rng.integers(0, V, (B, S)), jnp.int32)
    m = jnp.asarray(rng.random((B, S)) > 0.3, jnp.float32)

    def reference(h, w):
        logp = jax.nn.log_softmax(h @ w, axis=-1)
        return -jnp.sum(jnp.take_along_axis(logp, t[..., None], -1)[..., 0] * m)

    for chunk in (8, 32):
        ours = lambda h, w: chunked_cross_entropy(h, w, t, m, chunk)
        np.testing.assert_allclose(ours(h, w), reference(h, w), rtol=1e-5)
        g_ours, g_ref = jax.grad(ours, (0, 1))(h, w), jax.grad(reference, (0, 1))(h, w)
        for a, b in zip(g_ours, g_ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="loss_chunk"):
        chunked_cross_entropy(h, w, t, m, 5)


def test_no_full_float32_logits_in_the_training_loss():
    """The jaxpr of loss + gradient holds no [B, S, V] float32 value (only [B, chunk, V])."""
    model, cfg = make_model(**{"model.loss_chunk": 8})
    graphdef, params = nnx.split(model)
    batch = {k: jnp.asarray(v) for k, v in packed_batch(np.random.default_rng(5), 2, 32, 256).items()}
    jaxpr = jax.make_jaxpr(jax.grad(lambda p: next_token_loss(nnx.merge(graphdef, p), batch)[0]))(params)
    shapes = {tuple(v.aval.shape) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars if hasattr(v.aval, "shape")}

    def all_shapes(jaxpr):
        for eqn in jaxpr.eqns:
            for v in eqn.outvars:
                yield tuple(getattr(v.aval, "shape", ())), getattr(v.aval, "dtype", None)
            for value in eqn.params.values():
                for sub in value if isinstance(value, (list, tuple)) else [value]:
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        yield from all_shapes(inner)

    full = [(s, d) for s, d in all_shapes(jaxpr.jaxpr) if s == (2, 32, 256) and d == jnp.float32]
    assert not full, full
    assert shapes  # the jaxpr was walked


def test_paper_parameter_counts_by_abstract_evaluation():
    """7B: 6,910,365,696 and 67B: 67,425,001,472 (the released shapes), without allocating."""
    for name, expected in (("deepseek_7b", 6_910_365_696), ("deepseek_67b", 67_425_001_472)):
        spec = model_spec(load_config(config_path(name)).model)
        assert spec.param_count == expected, name


def test_flops_per_token_follows_design_md():
    m = load_config(config_path("bench_1p6b")).model
    matmul = 24 * (4 * 2048 ** 2 + 3 * 2048 * 5504) + 2048 * 102400
    assert flops_per_token(m, 4096) == 6 * matmul + 6 * 24 * 2048 * 4096


def test_model_info_cli_describes_67b_without_allocating():
    import subprocess
    import sys

    from helpers import REPO
    out = subprocess.run([sys.executable, "-m", "dsllm.model.info", f"--config={config_path('deepseek_67b')}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr
    assert "67,425,001,472" in out.stdout and "FLOPs/token" in out.stdout


def test_embedding_gradient_of_a_frequent_token_is_summed_in_float32():
    """4,000 occurrences of one token: its embedding gradient must match the float32 sum (a bf16
    scatter-add stalls at 256 and is far off)."""
    model, _ = make_model()
    graphdef, params = nnx.split(model)
    tokens = jnp.full((8, 500), 7, jnp.int32)

    def f(p):
        m = nnx.merge(graphdef, p)
        return m.hidden(tokens, jnp.ones_like(tokens), jnp.broadcast_to(jnp.arange(500), tokens.shape)).astype(
            jnp.float32).sum()

    g = jax.grad(f)(params)["embed_VD"][7]
    # reference: the same in float32 compute
    model32, _ = make_model(**{"model.dtype": "float32"})
    g32 = jax.grad(lambda p: nnx.merge(nnx.split(model32)[0], p).hidden(
        tokens, jnp.ones_like(tokens), jnp.broadcast_to(jnp.arange(500), tokens.shape)).sum())(nnx.split(model32)[1])
    g32 = g32["embed_VD"][7]
    assert float(jnp.linalg.norm(g - g32) / jnp.linalg.norm(g32)) < 2e-2
