"""What a packed tile costs beyond its blocks (NOTES.md v7, next steps): our forward and
forward+backward on rows packed with documents of one length L, for L from the whole row down
to 128, and a least-squares fit of the forward's time as
    t = c * (blocks the compute warpgroups run, summed over the two) / 2 + f * (work items),
counted from the plan. c is a block's time, f the fixed cost per tile (prologue, epilogue,
pipeline fill and drain). If f is worth several blocks, overlapping one work item's epilogue
with the next one's start is the lever for packed rows (a tile of the bench's packed rows runs
5.3 blocks, a dense one 16.5).

  PYTHONPATH=$site:$PWD python docs/kernels/scripts/v8_tile_cost.py            # H200: B4 S4096 H32 D128
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python docs/kernels/scripts/v8_tile_cost.py \
      --batch=1 --seq=512 --heads=2 --head_dim=64 --lengths=512,128 --warmup=1 --iters=1
                                                          # CPU smoke (interpreter, about 80 s)
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from dsllm.bench import attention as bench
from dsllm.bench.packed_rows import allowed_pairs
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import COMPUTE_WGS
from dsllm.kernels.plan import make_plan

BATCH = flags.DEFINE_integer("batch", 4, "rows")
SEQ = flags.DEFINE_integer("seq", 4096, "sequence length")
HEADS = flags.DEFINE_integer("heads", 32, "query and key/value heads")
HEAD_DIM = flags.DEFINE_integer("head_dim", 128, "head dimension")
LENGTHS = flags.DEFINE_string("lengths", "4096,2048,1024,512,256,128", "document lengths")
BACKWARD = flags.DEFINE_bool("backward", True, "also time forward+backward (the fit uses the forward)")


def uniform_segments(batch, seq, length):
    return jnp.asarray(np.broadcast_to(np.arange(seq) // length + 1, (batch, seq)).astype(np.int32))


def forward_work(seg, batch, seq):
    """(blocks run per warpgroup pair, work items) of the forward, from the plan's bounds."""
    b = np.asarray(make_plan(seg, batch, seq, causal=True).fwd_bounds)
    own = (b[..., 5] - b[..., 4]).sum()
    items = (b[..., 1] > b[..., 0]).reshape(batch, -1, COMPUTE_WGS)[..., 0].sum()
    return own / COMPUTE_WGS, int(items)


def main(argv):
    del argv
    B, S, H, D = BATCH.value, SEQ.value, HEADS.value, HEAD_DIM.value
    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(key, (B, S, H, D), jnp.bfloat16) for key in keys)
    rows = []
    for length in [int(x) for x in LENGTHS.value.split(",")]:
        seg = uniform_segments(B, S, length)
        attn = lambda q, k, v: flash_attention(q, k, v, seg, causal=True)
        loss = lambda q, k, v: attn(q, k, v).astype(jnp.float32).sum()
        t_fwd = bench.median_seconds(jax.jit(attn), q, k, v)
        t_all = (bench.median_seconds(jax.jit(jax.grad(loss, argnums=(0, 1, 2))), q, k, v)
                 if BACKWARD.value else float("nan"))
        flops = 4 * D * H * allowed_pairs(seg, B, S)
        blocks, items = forward_work(seg, B, S)
        rows.append((length, t_fwd, t_all, blocks * H, items * H))
        print(f"L={length:5d}: fwd {t_fwd * 1e3:.3f} ms {flops / t_fwd / 1e12:.1f} TFLOP/s | fwd+bwd "
              f"{t_all * 1e3:.3f} ms {3.5 * flops / t_all / 1e12:.1f} TFLOP/s | {blocks * H:.0f} "
              f"block pairs, {items * H} work items ({blocks / items:.2f} blocks per item)", flush=True)
    if len(rows) >= 2:
        a = np.array([[r[3], r[4]] for r in rows], float)
        (c, f), *_ = np.linalg.lstsq(a, np.array([r[1] for r in rows]), rcond=None)
        print(f"forward fit: {c * 1e6:.3f} us per block pair, {f * 1e6:.3f} us per work item "
              f"(= {f / c:.2f} blocks)", flush=True)


if __name__ == "__main__":
    sys.exit(app.run(main))
