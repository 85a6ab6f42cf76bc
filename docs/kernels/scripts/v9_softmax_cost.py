"""What the forward's softmax phase is made of (NOTES.md v8: the compute warpgroups spend 48%
of their time in it, ~1,370 cycles a block, and a block's period is about two of them: the
forward is bound by its softmax, not by the tensor cores). Each variant patches
block_math.softmax_update before tracing, times the forward and records its phases
(dsllm.bench.kernel_trace). The diagnostic variants compute WRONG outputs: they only say what a
part of the softmax costs.

  base        the kernel as it is
  no_exp      p = s * scale - m (no exp2 on the block: the MUFU's share)
  no_rescale  alpha = 1 (the accumulator's rescale folds away: its 64 FMULs' share)
  no_sum      l = l * alpha (no row sum of p: its FADDs' share)

  PYTHONPATH=$site:$PWD python docs/kernels/scripts/v9_softmax_cost.py            # H200
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python docs/kernels/scripts/v9_softmax_cost.py \\
      --shape=1,256,2,64 --rows=dense --trace=false --warmup=0 --iters=1     # CPU: the patches bite
"""
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax

from dsllm.bench import attention as bench
from dsllm.bench import kernel_trace as kt
from dsllm.bench.packed_rows import allowed_pairs
from dsllm.kernels import block_math as bm
from dsllm.kernels import mgpu_common as mc
from dsllm.kernels.flash_attention import flash_attention

SOFTMAXES = flags.DEFINE_string("softmaxes", "base,no_exp,no_rescale,no_sum", "see the docstring")
TRACE = flags.DEFINE_bool("trace", True, "also record the phases (Hopper only)")

EXACT = bm.softmax_update


def no_exp(s, m_prev, l_prev, scale=1.0):
    m_new = jnp.maximum(m_prev, s.max(axis=1) * scale)
    alpha = jnp.exp2(m_prev - m_new)
    p = s * scale - lax.broadcast_in_dim(m_new, s.shape, [0])
    return p, m_new, l_prev * alpha + p.sum(axis=1), alpha


def no_rescale(s, m_prev, l_prev, scale=1.0):
    p, m_new, l_new, alpha = EXACT(s, m_prev, l_prev, scale)
    return p, m_new, l_new, jnp.ones_like(alpha)


def no_sum(s, m_prev, l_prev, scale=1.0):
    m_new = jnp.maximum(m_prev, s.max(axis=1) * scale)
    alpha = jnp.exp2(m_prev - m_new)
    p = jnp.exp2(s * scale - lax.broadcast_in_dim(m_new, s.shape, [0]))
    return p, m_new, l_prev * alpha, alpha


PATCHES = {"base": EXACT, "no_exp": no_exp, "no_rescale": no_rescale, "no_sum": no_sum}


def phase_means(traces, names=("softmax", "sync", "turn", "pv")):
    """Mean cycles of each phase over the compute warpgroups, and the mean block period
    (between consecutive "qk" entries of an item)."""
    out = {}
    for name in names:
        d = [e - s for (p, wg), r in traces.items() if wg < mc.COMPUTE_WGS
             for n, _, s, e in r if n == name]
        out[name] = np.mean(d) if d else float("nan")
    periods = []
    for (p, wg), r in traces.items():
        if wg >= mc.COMPUTE_WGS:
            continue
        starts = [s for n, _, s, _ in r if n in ("qk", "item")]
        kinds = [n for n, _, _, _ in r if n in ("qk", "item")]
        periods += [b - a for a, b, ka, kb in zip(starts, starts[1:], kinds, kinds[1:])
                    if ka == kb == "qk"]
    out["period"] = np.mean(periods) if periods else float("nan")
    return out


def main(argv):
    del argv
    B, S, H, D = (int(x) for x in kt.SHAPE.value.split(","))
    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(key, (B, S, H, D), jnp.bfloat16) for key in keys)
    seg = kt.segments(kt.ROWS.value, B, S)
    flops = 4 * D * H * allowed_pairs(seg, B, S)
    outs = {}
    for name in SOFTMAXES.value.split(","):
        bm.softmax_update = PATCHES[name]
        try:
            fwd = jax.jit(lambda q, k, v: flash_attention(q, k, v, seg, causal=True))
            outs[name] = np.asarray(fwd(q, k, v), np.float32)
            t = bench.median_seconds(fwd, q, k, v)
            line = f"{name:<11} {kt.ROWS.value}: fwd {t * 1e3:.3f} ms {flops / t / 1e12:.1f} TFLOP/s"
            if TRACE.value:
                [(_, _, traces)], _ = kt.trace_call(kt.ROWS.value, (B, S, H, D), mc.BLOCKS, 560,
                                                    tempfile.mkdtemp(prefix=f"v9_{name}_"))
                line += " | cycles " + " ".join(f"{n} {c:.0f}" for n, c in phase_means(traces).items())
            if name != "base" and "base" in outs:
                line += f" | output differs from base: {not np.allclose(outs[name], outs['base'])}"
            print(line, flush=True)
        finally:
            bm.softmax_update = EXACT


if __name__ == "__main__":
    sys.exit(app.run(main))
