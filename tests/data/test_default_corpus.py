"""The default demo corpus: Python's own documentation, deterministic, and usable end to end."""

import json
import os

import numpy as np
import pytest

from dsllm.data import default_corpus, pipeline
from dsllm.data.prepare import prepare
from dsllm.data.shards import read_manifest
from dsllm.tokenizer import load_tokenizer, train_tokenizer


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_capped_corpus_is_deterministic_prose(tmp_path):
    a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    stats = default_corpus.write_default_corpus(a, max_bytes=300_000)
    default_corpus.write_default_corpus(b, max_bytes=300_000)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    docs = read_jsonl(a)
    assert len(docs) == stats["documents"] > 20
    total = sum(len(d["text"].encode()) for d in docs)
    assert total == stats["bytes"] and 250_000 < total <= 300_000  # whole documents up to the cap
    assert docs[0]["source"].startswith("pydoc_data.topics:")
    text = "".join(d["text"] for d in docs)
    letters_and_spaces = sum(c.isalpha() or c.isspace() for c in text) / len(text)
    assert letters_and_spaces > 0.75  # prose, not code
    assert " the " in text and "statement" in text
    assert sorted(os.listdir(tmp_path)) == ["a.jsonl", "b.jsonl"]  # no temporary left behind


def test_module_document_collects_nested_docstrings():
    source = '''"""Module summary."""
class Widget:
    """A widget."""
    def spin(self):
        """Spins it."""
    def _quiet(self):
        pass
def helper():
    """Helps."""
'''
    doc = default_corpus.module_document(source, "pkg.mod")
    assert doc == ("Module pkg.mod\n\nModule summary.\n\nWidget\n\nA widget.\n\nWidget.spin\n\nSpins it."
                   "\n\nhelper\n\nHelps.")
    assert default_corpus.module_document("x = 1\n", "empty") is None


def test_stdlib_docstrings_are_read_without_importing_and_tests_are_skipped(tmp_path):
    json_dir = os.path.join(default_corpus.stdlib_dir(), "json")
    docs = dict(default_corpus.docstring_documents(root=json_dir))
    assert "JSON (JavaScript Object Notation)" in docs["stdlib:__init__.py"]
    (tmp_path / "pkg" / "tests").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text('"""Kept."""\n')
    (tmp_path / "pkg" / "tests" / "test_a.py").write_text('"""Skipped."""\n')
    (tmp_path / "pkg" / "broken.py").write_text('"""Unparsable."""\ndef (:\n')
    skipped = []
    assert list(default_corpus.docstring_documents(root=str(tmp_path), skipped=skipped)) == [
        ("stdlib:pkg/a.py", "Module pkg.a\n\nKept.")]
    assert skipped == ["pkg/broken.py: SyntaxError"]  # reported, not silently lost


def test_cap_smaller_than_first_document_is_an_error(tmp_path):
    out = tmp_path / "c.jsonl"
    with pytest.raises(ValueError, match="smaller than the first document"):
        default_corpus.write_default_corpus(str(out), max_bytes=10)
    assert not os.listdir(tmp_path)  # neither the file nor its temporary


def test_corpus_feeds_tokenizer_prepare_and_pipeline(tmp_path):
    corpus = str(tmp_path / "corpus.jsonl")
    default_corpus.write_default_corpus(corpus, max_bytes=200_000)
    tok_dir = train_tokenizer([corpus], 512, str(tmp_path / "tok"))
    stats = prepare([corpus], tok_dir, str(tmp_path / "tokens"), validation_fraction=0.2)
    assert stats["splits"]["validation"]["documents"] > 0
    tok = load_tokenizer(tok_dir)
    # Over one eval pass the target bytes add up to the split's bytes: bits-per-byte is exact.
    total_bytes, total_mask = 0.0, 0.0
    for batch in pipeline.eval_batches(str(tmp_path / "tokens"), "validation", seq_len=64, global_batch=8,
                                       vocab_size=tok.vocab_size, process_index=0, process_count=1):
        total_bytes += float(batch["target_bytes"].astype(np.float64).sum())
        total_mask += float(batch["loss_mask"].sum())
    split = read_manifest(str(tmp_path / "tokens"))["splits"]["validation"]
    assert total_bytes == split["bytes"]
    assert total_mask == split["tokens"] + split["documents"]  # every token and each EOS is a target


def test_full_default_corpus(tmp_path):
    stats = default_corpus.write_default_corpus(str(tmp_path / "all.jsonl"))
    assert stats["documents"] > 500 and 1_500_000 < stats["bytes"] < 20_000_000
    assert stats["skipped_files"] == []
