"""Shared helpers for the kernel tests: inputs and the comparison with the reference.

Tolerances (bf16 kernels against the fp32 reference on the same bf16 inputs):
the kernels round P to bf16 before the P.V matmul and round outputs and gradients
to bf16 (relative rounding 2^-9 ~ 2e-3 per element), accumulating in fp32. The
measured relative L2 errors are ~2e-3 (out) and ~3e-3 (dq, dk, dv), so we allow
1e-2 and 2e-2. Each element must also satisfy |x - ref| <= 5e-2 * max|ref|: a key
wrongly attended or missed (a mask bug) moves whole rows by O(max|ref|), far
beyond that, even when it touches one row in a thousand and hides in the L2 norm.
"""
import jax
import jax.numpy as jnp
import numpy as np

from dsllm.kernels.reference import reference_attention

OUT_RTOL = 1e-2
GRAD_RTOL = 2e-2
ELEMENT_TOL = 5e-2


def random_qkv(seed, B, S, H, K, D, dtype=jnp.bfloat16):
    keys = jax.random.split(jax.random.key(seed), 4)
    q = jax.random.normal(keys[0], (B, S, H, D), dtype)
    k = jax.random.normal(keys[1], (B, S, K, D), dtype)
    v = jax.random.normal(keys[2], (B, S, K, D), dtype)
    do = jax.random.normal(keys[3], (B, S, H, D), jnp.float32)
    return q, k, v, do


def segments_from_lengths(*rows):
    """segments_from_lengths([3, 5, (0, 2)], ...) -> [B, S] ids; (0, n) is n padding tokens."""
    out = []
    for lengths in rows:
        ids, next_id = [], 1
        for item in lengths:
            if isinstance(item, tuple):
                ids += [item[0]] * item[1]
            else:
                ids += [next_id] * item
                next_id += 1
        out.append(ids)
    return jnp.asarray(np.array(out, np.int32))


def random_segments(rng, B, S, max_docs):
    """Rows of contiguous documents of random lengths, some ending in padding (id 0)."""
    rows = []
    for _ in range(B):
        n = int(rng.integers(1, max_docs + 1))
        cuts = np.sort(rng.choice(np.arange(1, S), min(n - 1, S - 1), replace=False))
        ids = np.searchsorted(cuts, np.arange(S), side="right") + 1
        if rng.random() < 0.5:
            ids[S - int(rng.integers(1, S // 4 + 1)):] = 0
        rows.append(ids)
    return jnp.asarray(np.array(rows, np.int32))


def rel_err(x, ref):
    x, ref = jnp.asarray(x, jnp.float32), jnp.asarray(ref, jnp.float32)
    return float(jnp.linalg.norm(x - ref) / jnp.linalg.norm(ref))


def compare_with_reference(attn, q, k, v, do, segment_ids, *, causal):
    """Check attn's output and dq, dk, dv against the reference; return the relative errors.

    One jax.vjp per side, so the (slowly interpreted) forward runs once."""
    do = do.astype(q.dtype)
    ours = lambda q, k, v: attn(q, k, v, segment_ids, causal=causal)
    ref = lambda q, k, v: reference_attention(q, k, v, segment_ids, causal=causal)
    out, vjp = jax.vjp(ours, q, k, v)
    grads = vjp(do)
    ref_out, ref_vjp = jax.vjp(ref, *(x.astype(jnp.float32) for x in (q, k, v)))
    ref_grads = ref_vjp(do.astype(jnp.float32))
    errors = {}
    for name, x, r, rtol in [("out", out, ref_out, OUT_RTOL),
                             *[(n, g, rg, GRAD_RTOL) for n, g, rg in zip(("dq", "dk", "dv"), grads, ref_grads)]]:
        assert x.dtype == q.dtype and x.shape == r.shape, (name, x.dtype, x.shape, r.shape)
        x32 = np.asarray(x.astype(jnp.float32))
        assert np.isfinite(x32).all(), f"{name} has non-finite values"
        errors[name] = rel_err(x32, r)
        assert errors[name] < rtol, (name, errors)
        worst = float(np.abs(x32 - np.asarray(r)).max())
        assert worst <= ELEMENT_TOL * float(np.abs(np.asarray(r)).max()), (name, worst, errors)
    return errors
