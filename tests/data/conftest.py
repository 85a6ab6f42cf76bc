"""Fixtures for the data tests (helpers live in token_fixtures.py)."""

import os
import sys

import pytest

# The test modules import token_fixtures by name; make that work under any pytest import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from token_fixtures import random_documents, write_dataset  # noqa: E402


@pytest.fixture(scope="session")
def token_dataset(tmp_path_factory):
    """A dataset with 'train' (97 documents over 3 shards) and 'validation' (13 documents)."""
    train = random_documents(97, seed=0)
    validation = random_documents(13, seed=1)
    path = write_dataset(tmp_path_factory.mktemp("tokens"), {"train": train, "validation": validation})
    return path, {"train": train, "validation": validation}
