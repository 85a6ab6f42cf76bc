"""Fixtures of the scaling tests."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture
def fake_trainer():
    """The trainer command of tests/scaling/fake_trainer.py (the dsllm.train contract, no training)."""
    return [sys.executable, os.path.join(HERE, "fake_trainer.py")]


@pytest.fixture
def base_config():
    return os.path.join(ROOT, "configs", "scaling_base.py")


@pytest.fixture(scope="session")
def byte_dataset(tmp_path_factory):
    """A real token dataset: some of the standard library's .py files as byte tokens (vocab 258,
    BOS 256, EOS 257), every tenth file held out for validation."""
    import glob

    from dsllm.data.shards import ShardWriter

    lib = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(lib, "json", "*.py")) + glob.glob(os.path.join(lib, "email", "*.py")))
    out = str(tmp_path_factory.mktemp("bytes") / "data")
    with ShardWriter(out, tokenizer="bytes", vocab_size=258, bos_id=256, eos_id=257,
                     shards={"train": 2, "validation": 1}) as w:
        for i, path in enumerate(files):
            data = open(path, "rb").read()
            if data:
                w.add("validation" if i % 10 == 0 else "train", list(data), len(data))
    return out
