"""What the bench's timings spend on the plan (NOTES.md v8): the attention call computes
its plan (row ranges, block bounds, the tile table; plan.make_plan) from the segment ids
inside the timed function, while the model computes it once per step for all layers. Times,
per shape: the plan alone, and forward / forward+backward with the plan made inside the call
(as dsllm.bench.attention times it) and given as an argument (as the model runs it).

  PYTHONPATH=$site:$PWD python docs/kernels/scripts/v8_plan_cost.py      # H200
"""
import sys

import jax
import jax.numpy as jnp
from absl import app, flags

from dsllm.bench import attention as bench
from dsllm.bench.kernel_trace import segments
from dsllm.bench.packed_rows import allowed_pairs
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.plan import make_plan

CASES = flags.DEFINE_string("cases", "dense,packed8,uniform512,uniform128", "row kinds")
SMALL_RUN = flags.DEFINE_bool("tiny", False, "B1 S512 H2 D64 (CPU smoke run)")


def main(argv):
    del argv
    B, S, H, D = (1, 512, 2, 64) if SMALL_RUN.value else (4, 4096, 32, 128)
    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(key, (B, S, H, D), jnp.bfloat16) for key in keys)
    for case in CASES.value.split(","):
        seg = segments(case, B, S)
        flops = 4 * D * H * allowed_pairs(seg, B, S)
        plan_fn = jax.jit(lambda seg: make_plan(seg, B, S, causal=True))
        t_plan = bench.median_seconds(plan_fn, seg)
        plan = plan_fn(seg)
        loss = lambda q, k, v, p: flash_attention(q, k, v, seg, plan=p).astype(jnp.float32).sum()
        times = {
            "fwd, plan inside": bench.median_seconds(
                jax.jit(lambda q, k, v: flash_attention(q, k, v, seg)), q, k, v),
            "fwd, plan given": bench.median_seconds(
                jax.jit(lambda q, k, v, p: flash_attention(q, k, v, seg, plan=p)), q, k, v, plan),
            "fwd+bwd, plan inside": bench.median_seconds(
                jax.jit(jax.grad(lambda q, k, v: loss(q, k, v, None), argnums=(0, 1, 2))), q, k, v),
            "fwd+bwd, plan given": bench.median_seconds(
                jax.jit(jax.grad(loss, argnums=(0, 1, 2))), q, k, v, plan),
        }
        line = f"{case}: plan {t_plan * 1e3:.3f} ms"
        for name, t in times.items():
            f = flops * (3.5 if "bwd" in name else 1)
            line += f" | {name} {t * 1e3:.3f} ms {f / t / 1e12:.1f} TFLOP/s"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(app.run(main))
