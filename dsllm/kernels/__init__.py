"""Attention kernels for dsllm and the dispatch point that picks one per platform.

- flash_attention.flash_attention: our Pallas kernels (Mosaic GPU on Hopper; jax's
  splash attention wrapped on TPU), with a custom VJP.
- reference.reference_attention: the plain-jnp reference every kernel is tested against.
"""

ACCELERATED_PLATFORMS = ("gpu", "cuda", "tpu")


def default_attention_impl(platform):
    """The model's attention implementation for a jax platform name.

    "pallas" (our flash_attention kernels) on GPU and TPU, "xla" on CPU, where the
    kernels would only run in a (slow) interpreter.
    """
    platform = platform.lower()
    if platform in ACCELERATED_PLATFORMS:
        return "pallas"
    if platform == "cpu":
        return "xla"
    raise ValueError(f"unknown platform {platform!r}: expected one of cpu, gpu, tpu")
