"""The study's corpus builder: Python files -> exact dedup -> JSONL + tokenizer sample."""

import json
import os

import pytest

from dsllm.data.prepare import is_validation
from dsllm.scaling.code_corpus import MAX_FILE_BYTES, build, default_roots


def _tree(root):
    files = {}
    for i in range(40):
        files[f"pkg{i % 3}/mod{i}.py"] = f"def f{i}(x):\n    return x * {i}  # {'pad ' * 30}\n"
    files["pkg0/copy_of_mod1.py"] = files["pkg1/mod1.py"]        # an exact duplicate
    files["vendored/pkg1/mod1.py"] = files["pkg1/mod1.py"]       # and another
    files["pkg0/__init__.py"] = ""                               # too small
    files["pkg0/table.py"] = "x = 1\n" * (MAX_FILE_BYTES // 6 + 10)  # too large
    files["pkg0/readme.txt"] = "not python" * 20                  # not *.py
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "pkg2" / "latin1.py").write_bytes(b"# caf\xe9\n" + b"y = 2\n" * 30)  # not UTF-8
    os.symlink(root / "pkg1" / "mod4.py", root / "pkg2" / "link.py")     # one real file, seen once
    return files


def test_build(tmp_path):
    _tree(tmp_path / "src")
    out = tmp_path / "out"
    s = build(str(out), [str(tmp_path / "src")], tokenizer_mb=0.002, validation_fraction=0.2)
    assert s["files"] == 45  # 40 + 2 copies + __init__ + table + latin1 (the link is the same file)
    assert (s["kept"], s["duplicates"], s["too_small"], s["too_large"], s["not_utf8"]) == (40, 2, 1, 1, 1)
    docs = [json.loads(l) for l in open(out / "corpus.jsonl")]
    assert len(docs) == 40 and len({d["text"] for d in docs}) == 40
    assert s["bytes"] == sum(len(d["text"].encode()) for d in docs)
    sample = [json.loads(l) for l in open(out / "tokenizer_sample.jsonl")]
    assert 0 < len(sample) < 40 and s["tokenizer_sample_documents"] == len(sample)
    assert not any(is_validation(d["text"], 0.2, 0) for d in sample)  # the tokenizer never sees validation
    assert any(is_validation(d["text"], 0.2, 0) for d in docs)
    assert json.load(open(out / "stats.json"))["kept"] == 40
    # the same input gives the same corpus, in the same (hash) order
    s2 = build(str(tmp_path / "out2"), [str(tmp_path / "src")], tokenizer_mb=0.002, validation_fraction=0.2)
    assert open(out / "corpus.jsonl").read() == open(tmp_path / "out2" / "corpus.jsonl").read()
    assert s2["kept"] == 40


def test_cap_keeps_a_subset(tmp_path):
    _tree(tmp_path / "src")
    s = build(str(tmp_path / "out"), [str(tmp_path / "src")], max_mb=0.001)
    assert 0 < s["kept"] < 40 and s["capped"] == 40 - s["kept"] and s["bytes"] <= 1000


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="not directories"):
        build(str(tmp_path / "o"), [str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no Python source files"):
        build(str(tmp_path / "o"), [str(tmp_path / "empty")])


def test_default_roots_hold_this_python():
    roots = default_roots()
    assert roots and all(os.path.isdir(r) for r in roots)
    assert any(os.path.exists(os.path.join(r, "os.py")) for r in roots)
