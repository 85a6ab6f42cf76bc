import json
import os
import sys

import pytest

# the test modules import corpus_testlib (pytest runs with --import-mode=importlib)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def write_jsonl(tmp_path):
    def _w(name, recs, raw=None):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            p.write_bytes(raw)
        else:
            p.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
        return str(p)
    return _w
