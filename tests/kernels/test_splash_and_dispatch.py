"""The TPU path (jax's splash attention behind our signature, in the TPU
interpreter), the per-platform dispatch, and the errors a caller can cause."""
import jax.numpy as jnp
import pytest

from dsllm.kernels import default_attention_impl
from dsllm.kernels.flash_attention import flash_attention
from kernel_test_utils import compare_with_reference, random_qkv, segments_from_lengths


def splash(q, k, v, segment_ids, *, causal):
    return flash_attention(q, k, v, segment_ids, causal=causal, backend="splash", interpret=True)


def test_splash_wrapper_packed_causal_gqa_and_ragged_length():
    # GQA 2, S=200 (padded inside to 256 with a segment of its own), packed + padding.
    seg = segments_from_lengths([50, 100, 1, 39, (0, 10)])
    q, k, v, do = random_qkv(3, 1, 200, 4, 2, 64)
    compare_with_reference(splash, q, k, v, do, seg, causal=True)


def test_default_attention_impl():
    assert default_attention_impl("gpu") == "pallas"
    assert default_attention_impl("cuda") == "pallas"
    assert default_attention_impl("tpu") == "pallas"
    assert default_attention_impl("cpu") == "xla"
    assert default_attention_impl("gpu", "9.0") == "pallas"   # Hopper: our Mosaic GPU kernels
    assert default_attention_impl("gpu", "8.0") == "xla"      # Ampere: no wgmma
    with pytest.raises(ValueError, match="unknown platform"):
        default_attention_impl("abacus")


@pytest.mark.parametrize("shapes, dtype, match", [
    (((1, 128, 4, 96), (1, 128, 4, 96)), jnp.bfloat16, "head_dim 96"),
    (((1, 128, 4, 64), (1, 128, 3, 64)), jnp.bfloat16, "multiple of key/value heads"),
    (((1, 128, 4, 64), (1, 64, 4, 64)), jnp.bfloat16, "same batch and seq"),
    (((1, 128, 4, 64), (1, 128, 4, 64)), jnp.float32, "bfloat16/float16"),
    (((128, 4, 64), (128, 4, 64)), jnp.bfloat16, r"\[batch, seq, heads, head_dim\]"),
])
def test_bad_inputs_raise_one_clear_error(shapes, dtype, match):
    q = jnp.zeros(shapes[0], dtype)
    k = jnp.zeros(shapes[1], dtype)
    with pytest.raises(ValueError, match=match):
        flash_attention(q, k, k, None)


def test_bad_segment_ids_backend_and_scale():
    q = jnp.zeros((1, 128, 2, 64), jnp.bfloat16)
    with pytest.raises(ValueError, match="segment_ids must be"):
        flash_attention(q, q, q, jnp.zeros((1, 64), jnp.int32))
    with pytest.raises(ValueError, match="unknown flash_attention backend"):
        flash_attention(q, q, q, None, backend="triton")
    for bad_scale in (0.0, -0.125, 2.0 ** 30):
        with pytest.raises(ValueError, match="sm_scale must be in"):
            flash_attention(q, q, q, None, sm_scale=bad_scale)


def test_non_hopper_gpu_is_refused(monkeypatch):
    import jax
    from dsllm.kernels import flash_attention as fa

    class FakeAmpere:
        compute_capability = "8.0"
    monkeypatch.setattr(jax, "devices", lambda *a: [FakeAmpere()])
    q = jnp.zeros((1, 128, 2, 64), jnp.bfloat16)
    with pytest.raises(ValueError, match="need a Hopper GPU"):
        fa.flash_attention(q, q, q, None, backend="mosaic_gpu", interpret=False)


def test_interpreter_with_too_few_cpu_devices_is_refused(monkeypatch):
    # With fewer host devices than a program's warpgroups, the Mosaic GPU interpreter hung
    # (docs/kernels/README.md); the tests' 8 devices are enough.
    import jax
    from dsllm.kernels import flash_attention as fa

    cpus = jax.devices("cpu")
    q = jnp.zeros((1, 128, 2, 64), jnp.bfloat16)
    monkeypatch.setattr(jax, "devices", lambda *a: cpus[:2])
    with pytest.raises(RuntimeError, match="needs at least 3 CPU devices.*device_count=8"):
        fa.flash_attention(q, q, q, None, backend="mosaic_gpu", interpret=True)
    monkeypatch.setattr(jax, "devices", lambda *a: cpus[:3])
    assert fa.flash_attention(q, q, q, None, backend="mosaic_gpu", interpret=True).shape == q.shape
