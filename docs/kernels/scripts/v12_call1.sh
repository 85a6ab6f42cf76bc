#!/usr/bin/env bash
# v12's first GPU call (run from branch defer-epilogue): the persistent forward's deferred epilogue (Blocks.defer_epilogue,
# bench variant "defer", branch defer-epilogue). An item's epilogue (normalise, store) runs after
# the next item's first Q K^T is issued and its schedule arrival made, so the other warpgroup's
# last P V no longer waits for it. Prediction (NOTES v12): an item's cost beyond its blocks from
# ~1.4 (dense) / ~1.7 (packed8) blocks toward ~0.5-0.8; forward +3-5% dense, +8-15% packed.
# 1. a correctness run with a hard timeout (the interpreter hung on this branch with several
#    items per program; a deadlock on the GPU would show here, not eat the call);
# 2. the variant in the same rounds as the default, shapes 3 and 1;
# 3. items-level traces of the variant, dense and packed8 (the item fit a + b * blocks; the
#    default's, from the first run of this call, which hung at step 1: 3709 + 2704 b dense,
#    4305 + 2710 b packed8).
exec > >(tee -a "${OUT:-/tmp}/v12_call1.txt") 2>&1
timeout 150 python -P - <<'PY'
import jax, jax.numpy as jnp, numpy as np, dsllm
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks
from dsllm.bench.packed_rows import packed_segments
print("dsllm", dsllm.__file__, flush=True)
for docs in (0, 8):
    k0 = jax.random.PRNGKey(docs)
    q, k, v = (jax.random.normal(kk, (4, 4096, 32, 128), jnp.bfloat16) for kk in jax.random.split(k0, 3))
    seg = None if docs == 0 else packed_segments(4, 4096, docs, seed=docs)
    f = lambda b: jax.jit(lambda q, k, v: flash_attention(q, k, v, seg, causal=True, blocks=b))(q, k, v)
    a, d = f(Blocks()), f(Blocks(defer_epilogue=True))
    jax.block_until_ready(d)
    print(docs, "docs: max |defer - default| =", float(jnp.max(jnp.abs(a.astype(jnp.float32) - d.astype(jnp.float32)))), flush=True)
PY
echo "correctness rc=$?"
timeout 300 python -P -m dsllm.bench.attention --shapes=3,1 --impls=pallas --variants=defer \
    --variant_shapes=3,1 --rounds=3 --extra_checks=false 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
for rows in dense packed8; do for b in defer_epilogue=True; do
  echo "== trace rows=$rows blocks=$b"
  timeout 60 python -P -m dsllm.bench.kernel_trace --rows=$rows --blocks="$b" 2>&1 | grep -v "^[IW][0-9]" | tail -14
done; done
