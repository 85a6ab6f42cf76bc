"""The fused backward (mgpu_backward_fused) under the interpreter, and the rule that picks it.

Its TMA reduce-add is a read-add-write there (the interpreter has none); the compiled
kernel is checked by the bench on the GPU (`--variants=fused`).
"""
import jax.numpy as jnp
import numpy as np
import pytest

from dsllm.kernels import mgpu_backward_fused
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks
from dsllm.kernels.plan import make_plan
from kernel_test_utils import compare_with_reference, random_qkv, segments_from_lengths

CASES = {
    # packed causal GQA 2: documents across block edges, a 1-token one, padding
    "packed_causal_gqa2": ((3, 1, 256, 2, 1, 128), [100, 5, 1, 30, 60, (0, 60)], True),
    "packed_bidirectional": ((2, 1, 384, 4, 1, 128), [70, (0, 10), 200, 104], False),
    # GQA 8 sums dK/dV over 8 heads with packed_causal_gqa2's loop; kept out of CI (35 s)
    "plain_causal_gqa8_two_rows": ((1, 2, 256, 8, 1, 128), None, True),
    # head_dim 64: each warpgroup's dQ from its own keys, both reduce-adding into the same rows
    "d64_packed_causal_gqa2": ((3, 1, 256, 2, 1, 64), [100, 5, 1, 30, 60, (0, 60)], True),
    "d64_plain_causal_two_rows": ((1, 2, 384, 2, 2, 64), None, True),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c == "plain_causal_gqa8_two_rows"
                                  else c for c in CASES])
def test_fused_backward_gradients(case):
    shape, lengths, causal = CASES[case]
    q, k, v, do = random_qkv(*shape)
    seg = None if lengths is None else segments_from_lengths(*([lengths] * shape[1]))
    blocks = Blocks(backward="fused")
    attn = lambda q, k, v, s, causal: flash_attention(q, k, v, s, causal=causal, blocks=blocks,
                                                      backend="mosaic_gpu", interpret=True)
    compare_with_reference(attn, q, k, v, do, seg, causal=causal)


def test_fused_backward_refuses_other_head_dims():
    q, k, v, _ = random_qkv(1, 1, 256, 2, 1, 96)
    with pytest.raises(ValueError, match="head_dim in"):
        mgpu_backward_fused.dkv_dq(q, k, v, q, None, None, None, None, None, sm_scale=1.0,
                                   blocks=Blocks(), interpret=True)


def test_unknown_backward_is_refused():
    with pytest.raises(ValueError, match="Blocks.backward='fast'"):
        Blocks(backward="fast")


def _packed(batch, seq, doc_len):
    lengths = [doc_len] * (seq // doc_len) + ([seq % doc_len] if seq % doc_len else [])
    return jnp.asarray(segments_from_lengths(*([lengths] * batch)))


@pytest.mark.parametrize("segments, fused", [
    (None, True),                                   # dense causal: 1.5% more blocks
    (lambda: _packed(2, 4096, 2048), True),         # long documents
    (lambda: _packed(2, 4096, 384), False),         # short ones: the trimmed split wins
])
def test_auto_picks_fused_when_its_extra_blocks_are_few(segments, fused):
    seg = segments() if segments else None
    plan = make_plan(seg, 2, 4096, causal=True)
    assert bool(mgpu_backward_fused.use_fused(plan.dkv_bounds)) == fused


def test_extra_blocks_of_the_rule_match_its_comment():
    """The fractions MAX_EXTRA_BLOCKS is set between: dense causal rows and the bench's packed
    rows (dsllm.bench.attention shape 3)."""
    from dsllm.bench.packed_rows import packed_segments

    def extra(seg):
        b = np.asarray(make_plan(seg, 4, 4096, causal=True).dkv_bounds)
        return (b[..., 1] - b[..., 0]).sum() / (b[..., 5] - b[..., 4]).sum() - 1
    dense, packed = extra(None), extra(jnp.asarray(packed_segments(4, 4096, 8)))
    assert dense == pytest.approx(0.015, abs=0.001) and packed == pytest.approx(0.098, abs=0.001)
    assert dense < mgpu_backward_fused.MAX_EXTRA_BLOCKS < packed
