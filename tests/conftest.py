"""Every test runs on CPU with 8 fake devices, so that meshes like 2x2x2 exist on a laptop."""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

from helpers import counting_documents  # noqa: E402


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
