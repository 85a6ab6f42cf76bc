"""Every test runs on CPU with 8 fake devices, so that meshes like 2x2x2 exist on a laptop."""

import os
import shutil
import sys
import tempfile

# --xla_backend_optimization_level=0: the tests compile hundreds of small programs and run them
# on tiny inputs, so LLVM's optimisation costs more than it saves (the train tests 1.6x faster,
# the kernel interpreter's 1.2x). Set XLA_FLAGS yourself to test with the optimised code.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
os.environ["XLA_FLAGS"] = (os.environ["XLA_FLAGS"] + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Compiled programs are kept on disk, shared by the test processes and by later runs: every
# train() call jits its step anew, so the train, model and CLI tests compile the same tiny
# programs many times over (test_resume_is_exact: 48 s without the cache, 26 s cold, 11 s warm).
# The cache's key holds the program, the compile options, jax's version and the backend.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"dsllm-tests-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

from helpers import counting_documents  # noqa: E402

CACHE_LIMIT_BYTES = 1 << 30


def pytest_configure(config):
    """Start the compilation cache over once it passes 1 GiB (a cold run writes ~26 MB; it grows
    as programs change). Not jax's own eviction (JAX_COMPILATION_CACHE_MAX_SIZE): it scans the
    whole cache on every write, which made the suite 1.6x slower. Done once, before the xdist
    workers start (they have `workerinput`)."""
    cache = os.environ["JAX_COMPILATION_CACHE_DIR"]
    if hasattr(config, "workerinput") or not os.path.isdir(cache):
        return
    if sum(e.stat().st_size for e in os.scandir(cache) if e.is_file()) > CACHE_LIMIT_BYTES:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A token dataset for the tiny config: 360 training and 40 validation documents."""
    from dsllm.data.shards import ShardWriter

    path = str(tmp_path_factory.mktemp("tiny_tokens"))
    with ShardWriter(path, tokenizer="counting", vocab_size=256, bos_id=1, eos_id=2,
                     shards={"train": 2, "validation": 1}) as w:
        for i, doc in enumerate(counting_documents(400, seed=0)):
            w.add("validation" if i % 10 == 0 else "train", doc, n_bytes=2 * len(doc))
    return path
