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
