import json

import pytest


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
