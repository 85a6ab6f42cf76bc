"""On a GPU: the `cudnn` attention paths against the `xla` reference, outputs and gradients.

    python -m dsllm.bench.check_cudnn

Checks rows of one document with padding at the end, with MHA and GQA, and that a packed
batch is refused. Exits non-zero if any relative error exceeds bf16 tolerance.

(Packed rows through cuDNN's ragged-offsets layout, jax._src.cudnn.fused_attention_stablehlo
with q_offsets/kv_offsets, were checked here once on the H200 with jax 0.11.2: forward right,
dq wrong by a relative 0.3. That path is therefore not used.)
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from dsllm.model.attention import check_segments, cudnn_attention, xla_attention

TOL = 2e-2  # bf16 inputs, fp32 reference softmax: errors land near 1e-3..5e-3


def packed_segments(rng, B, S, n_docs):
    seg = np.zeros((B, S), np.int32)
    for b in range(B):
        cuts = np.sort(rng.choice(np.arange(1, S - 8), n_docs - 1, replace=False))
        bounds = [0, *cuts, S - 8]  # the last 8 positions are padding
        for i in range(n_docs):
            seg[b, bounds[i]:bounds[i + 1]] = i + 1
    return seg


def relerr(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check(name, B, S, H, K, E, seg):
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q = jax.random.normal(keys[0], (B, S, H, E), jnp.bfloat16)
    k = jax.random.normal(keys[1], (B, S, K, E), jnp.bfloat16)
    v = jax.random.normal(keys[2], (B, S, K, E), jnp.bfloat16)
    do = jax.random.normal(keys[3], (B, S, H, E), jnp.float32)
    seg = jnp.asarray(seg)
    valid = (seg > 0)[..., None, None]  # padding outputs are don't-care

    def loss(f):
        return lambda q, k, v: jnp.sum(jnp.where(valid, f(q, k, v, seg).astype(jnp.float32) * do, 0.0))

    ref = lambda q, k, v, s: xla_attention(q, k, v, s)
    ours = lambda q, k, v, s: cudnn_attention(q, k, v, s)
    out_err = relerr(jnp.where(valid, jax.jit(ours)(q, k, v, seg), 0), jnp.where(valid, jax.jit(ref)(q, k, v, seg), 0))
    g_ours = jax.jit(jax.grad(loss(ours), argnums=(0, 1, 2)))(q, k, v)
    g_ref = jax.jit(jax.grad(loss(ref), argnums=(0, 1, 2)))(q, k, v)
    errs = [out_err] + [relerr(a, b) for a, b in zip(g_ours, g_ref)]
    ok = all(np.isfinite(e) and e < TOL for e in errs)
    print(f"{name}: out {errs[0]:.2e} dq {errs[1]:.2e} dk {errs[2]:.2e} dv {errs[3]:.2e} -> {'OK' if ok else 'FAIL'}",
          flush=True)
    return ok


def main():
    rng = np.random.default_rng(0)
    B, S = 2, 1024
    single = np.ones((B, S), np.int32)
    single[:, -100:] = 0
    results = [
        check("one doc + padding, MHA", B, S, 8, 8, 128, single),
        check("one doc + padding, GQA 8:2", B, S, 8, 2, 128, single),
    ]
    try:
        check_segments(packed_segments(rng, B, S, 8), "cudnn")
        print("packed batch: NOT refused -> FAIL")
        results.append(False)
    except ValueError:
        print("packed batch: refused -> OK")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
