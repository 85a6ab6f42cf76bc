"""v15 diagnostic: does a third K/V stage help the forward? (NOTES.md v15, next step 1)

The persistent forward has no SMEM for a third stage (2 Q slots x 2 warpgroups x 16 KB + 2 x 64 KB
of K/V = 192 KB of 227 KB). The per-tile forward (one Q per warpgroup, 32 KB) takes one,
32 + 3 x 64 = 224 KB, once Pallas's 2 KB of cross-warp reduction scratch is not reserved
(v15 call 5 ran it with `reduction_scratch_bytes=0` in mgpu_common.compiler_params, which main
does not keep: add it back to run this). So time the per-tile forward with 2 and 3 stages and the default
(persistent, 2 stages) beside them, forward only (flash_attention without a gradient runs the
forward kernel alone: the backward kernels do not fit 3 stages), on the bench's shapes 1 and 3.
If 3 stages beat 2 by a few % per tile, a forward with 3 stages is worth building.
On the GPU: python -P docs/kernels/scripts/v15_stages.py [--rounds=5]
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dsllm.bench import timing
from dsllm.bench.packed_rows import packed_segments
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks

VARIANTS = {
    "default": Blocks(),
    "pertile_s2": Blocks(persistent_forward=False),
    "pertile_s3": Blocks(persistent_forward=False, stages=3),
}


def main(rounds):
    B, S, H, D = 4, 4096, 32, 128
    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(key, (B, S, H, D), jnp.bfloat16) for key in keys)
    for shape, seg in (("1", None), ("3", jnp.asarray(packed_segments(B, S, 8)))):
        fns = {name: jax.jit(lambda q, k, v, b=b, seg=seg: flash_attention(q, k, v, seg, causal=True, blocks=b))
               for name, b in VARIANTS.items()}
        outs = {name: np.asarray(f(q, k, v), np.float32) for name, f in fns.items()}
        for name in ("pertile_s2", "pertile_s3"):   # the same math: equal bit for bit
            print(f"shape{shape} {name}: max |out - default| = {np.abs(outs[name] - outs['default']).max():.3g}",
                  flush=True)
        times = timing.interleaved_seconds(fns, (q, k, v), rounds=rounds, warm_seconds=2.0, iters=50)
        for name, t in times.items():
            print(f"shape{shape} {name}: {np.median(t) * 1e3:.3f} ms  rounds "
                  + " ".join(f"{x * 1e3:.3f}" for x in t))
        for a, b in (("pertile_s3", "pertile_s2"), ("pertile_s3", "default"), ("pertile_s2", "default")):
            r = timing.paired_ratios(times, a, b)
            print(f"shape{shape} {a} over {b}: {np.median(r):.3f}x ({min(r):.3f}-{max(r):.3f})", flush=True)


if __name__ == "__main__":
    main(int(dict(a[2:].split("=") for a in sys.argv[1:]).get("rounds", 5)))
