"""Attention kernels for dsllm and the dispatch point that picks one per platform.

- flash_attention.flash_attention: our Pallas kernels (Mosaic GPU on Hopper; jax's
  splash attention wrapped on TPU), with a custom VJP.
- reference.reference_attention: the plain-jnp reference every kernel is tested against.
"""

ACCELERATED_PLATFORMS = ("gpu", "cuda", "tpu")


def default_attention_impl(platform, compute_capability=None):
    """The model's attention implementation for a jax platform name.

    "pallas" (our flash_attention kernels) on TPU and on Hopper GPUs (compute capability 9.x:
    the Mosaic GPU kernels use wgmma); "xla" on CPU, where the kernels would only run in a
    (slow) interpreter, and on other GPUs, where only the reference honours packed rows.
    """
    platform = platform.lower()
    if platform in ("gpu", "cuda") and compute_capability is not None \
            and str(compute_capability).split(".")[0] != "9":
        return "xla"
    if platform in ACCELERATED_PLATFORMS:
        return "pallas"
    if platform == "cpu":
        return "xla"
    raise ValueError(f"unknown platform {platform!r}: expected one of cpu, gpu, tpu")
