"""The fused backward (mgpu_backward_fused), both dQ splits, under the interpreter.

Its TMA reduce-add is a read-add-write there (the interpreter has none); the compiled
kernels are checked by the bench on the GPU (`--variants=fused,fusedkeys`).
"""
import pytest

from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks
from kernel_test_utils import compare_with_reference, random_qkv, segments_from_lengths

CASES = {
    # packed causal GQA 2: documents across block edges, a 1-token one, padding
    "packed_causal_gqa2": ((3, 1, 256, 2, 1, 128), [100, 5, 1, 30, 60, (0, 60)], True),
    "packed_bidirectional": ((2, 1, 384, 4, 1, 128), [70, (0, 10), 200, 104], False),
    "plain_causal_gqa8_two_rows": ((1, 2, 256, 8, 1, 128), None, True),
}


@pytest.mark.parametrize("dq_split", ["columns", "keys"])
@pytest.mark.parametrize("case", CASES)
def test_fused_backward_gradients(case, dq_split):
    shape, lengths, causal = CASES[case]
    q, k, v, do = random_qkv(*shape)
    seg = None if lengths is None else segments_from_lengths(*([lengths] * shape[1]))
    blocks = Blocks(fused_backward=dq_split)
    attn = lambda q, k, v, s, causal: flash_attention(q, k, v, s, causal=causal, blocks=blocks,
                                                      backend="mosaic_gpu", interpret=True)
    compare_with_reference(attn, q, k, v, do, seg, causal=causal)
