"""prepare: raw JSONL / text -> token shards, with deterministic validation split and clear errors."""

import json
import os
import random
import subprocess
import sys

import pytest

from dsllm.data import pipeline
from dsllm.data.prepare import PrepareError, is_validation, prepare
from dsllm.data.shards import DatasetError, iter_documents, read_manifest
from dsllm.tokenizer import load_tokenizer, train_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = "the a river stone light of and in was quiet north garden old bridge over château naïve 東京".split()


def make_texts(n, seed=0):
    rng = random.Random(seed)
    return [f"Doc {i}. " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) for i in range(n)]


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    corpus = write_jsonl(d / "corpus.jsonl", [{"text": t} for t in make_texts(300, seed=9)])
    return train_tokenizer([corpus], 400, str(d / "tok"))


def stored(path, split):
    return [(t.tolist(), n) for t, n in iter_documents(read_manifest(path), split)]


def test_jsonl_end_to_end(tmp_path, tokenizer_dir):
    texts = make_texts(80)
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "id": i} for i, t in enumerate(texts)] + ["  "])
    out = str(tmp_path / "tokens")
    stats = prepare([src], tokenizer_dir, out, validation_fraction=0.2, train_shards=2, validation_shards=1)
    tok = load_tokenizer(tokenizer_dir)

    expected = {"train": [], "validation": []}
    for t in texts:
        split = "validation" if is_validation(t, 0.2) else "train"
        expected[split].append((tok.encode(t), len(t.encode("utf-8"))))
    assert expected["train"] and expected["validation"]
    for split in ("train", "validation"):
        assert sorted(stored(out, split)) == sorted(expected[split])
        assert stats["splits"][split]["documents"] == len(expected[split])
        assert stats["splits"][split]["bytes"] == sum(b for _, b in expected[split])
    m = read_manifest(out)
    assert (m["vocab_size"], m["bos_id"], m["eos_id"]) == (tok.vocab_size, tok.bos_id, tok.eos_id)
    assert len(m["splits"]["train"]["shards"]) == 2
    assert stats["empty_documents"] == 0 and stats["bad_lines"] == 0
    batch = next(pipeline.train_iterator(out, "train", seq_len=32, global_batch=2, seed=0,
                                         vocab_size=tok.vocab_size, process_index=0, process_count=1))
    assert batch["inputs"].shape == (2, 32)


def test_validation_choice_does_not_depend_on_order_but_on_seed(tmp_path, tokenizer_dir):
    texts = make_texts(60, seed=1)
    shuffled = texts[:]
    random.Random(0).shuffle(shuffled)
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": t} for t in texts])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": t} for t in shuffled])
    for name, src, seed in [("a", a, 0), ("b", b, 0), ("c", a, 1)]:
        prepare([src], tokenizer_dir, str(tmp_path / name), validation_fraction=0.3, seed=seed)
    val = {name: sorted(stored(str(tmp_path / name), "validation")) for name in "abc"}
    assert val["a"] == val["b"]
    assert val["a"] != val["c"]


def test_text_files_one_document_per_file_or_per_paragraph(tmp_path, tokenizer_dir):
    (tmp_path / "x.txt").write_text("First paragraph of x.\n\nSecond paragraph of x.\n  \n\n\nThird.\n")
    (tmp_path / "y.txt").write_text("Only paragraph of y.")
    whole = prepare([str(tmp_path / "*.txt")], tokenizer_dir, str(tmp_path / "whole"), validation_fraction=0)
    assert whole["splits"] == {"train": whole["splits"]["train"]} and whole["splits"]["train"]["documents"] == 2
    paras = prepare([str(tmp_path / "*.txt")], tokenizer_dir, str(tmp_path / "paras"), validation_fraction=0,
                    split_on_blank_lines=True)
    assert paras["splits"]["train"]["documents"] == 4
    assert paras["empty_documents"] == 1  # the blank stretch between "Second" and "Third": counted, not lost
    tok = load_tokenizer(tokenizer_dir)
    texts = ["First paragraph of x.", "Second paragraph of x.", "Third.", "Only paragraph of y."]
    assert sorted(stored(str(tmp_path / "paras"), "train")) == sorted((tok.encode(t), len(t)) for t in texts)


def test_custom_text_field(tmp_path, tokenizer_dir):
    src = write_jsonl(tmp_path / "in.jsonl", [{"content": t} for t in make_texts(5)])
    stats = prepare([src], tokenizer_dir, str(tmp_path / "out"), text_field="content", validation_fraction=0)
    assert stats["splits"]["train"]["documents"] == 5


def test_malformed_lines_stop_with_file_and_line_and_leave_no_dataset(tmp_path, tokenizer_dir):
    good = [json.dumps({"text": t}) for t in make_texts(4)]
    src = write_jsonl(tmp_path / "in.jsonl", good[:2] + ['{"text": "unterminated'] + good[2:] + ['{"body": "x"}'])
    out = tmp_path / "out"
    with pytest.raises(PrepareError, match=r"in\.jsonl:3: not valid JSON .*--skip_bad_lines"):
        prepare([src], tokenizer_dir, str(out))
    assert not (out / "manifest.json").exists()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

    fixed = write_jsonl(tmp_path / "fixed.jsonl", good + ['{"body": "x"}'])
    with pytest.raises(PrepareError, match=r"fixed\.jsonl:5: no 'text' field \(found \['body'\]\)"):
        prepare([fixed], tokenizer_dir, str(out))
    with pytest.raises(PrepareError, match=r":1: field 'text' is a int"):
        prepare([write_jsonl(tmp_path / "int.jsonl", ['{"text": 3}'])], tokenizer_dir, str(out))

    stats = prepare([src], tokenizer_dir, str(out), skip_bad_lines=True, validation_fraction=0)
    assert stats["bad_lines"] == 2 and stats["splits"]["train"]["documents"] == 4


def test_user_errors(tmp_path, tokenizer_dir):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(3)])
    with pytest.raises(PrepareError, match="matches no file"):
        prepare([str(tmp_path / "nothing*.jsonl")], tokenizer_dir, str(tmp_path / "o1"))
    with pytest.raises(PrepareError, match="validation_fraction must be in"):
        prepare([src], tokenizer_dir, str(tmp_path / "o2"), validation_fraction=1.0)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(PrepareError, match="latin1.txt is not UTF-8"):
        prepare([str(tmp_path / "latin1.txt")], tokenizer_dir, str(tmp_path / "o3"))
    prepare([src], tokenizer_dir, str(tmp_path / "o4"), validation_fraction=0)
    before = os.listdir(tmp_path / "o4")
    with pytest.raises(DatasetError, match="already holds a dataset"):
        prepare([src], tokenizer_dir, str(tmp_path / "o4"), validation_fraction=0)
    assert os.listdir(tmp_path / "o4") == before  # the existing dataset is untouched


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "dsllm.data.prepare", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_cli(tmp_path, tokenizer_dir):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(30)])
    r = run_cli(f"--input={src}", f"--tokenizer={tokenizer_dir}", f"--out={tmp_path / 'out'}",
                "--validation_fraction=0.1", "--train_shards=3")
    assert r.returncode == 0, r.stderr
    m = read_manifest(str(tmp_path / "out"))
    n = m["splits"]["train"]["documents"] + m["splits"]["validation"]["documents"]
    assert n == 30 and f"{m['splits']['train']['tokens']:,} tokens" in r.stdout

    bad = write_jsonl(tmp_path / "bad.jsonl", ["not json"])
    r = run_cli(f"--input={bad}", f"--tokenizer={tokenizer_dir}", f"--out={tmp_path / 'out2'}")
    assert r.returncode != 0
    assert "bad.jsonl:1: not valid JSON" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(f"--input={src}", f"--tokenizer={tmp_path / 'no_tokenizer'}", f"--out={tmp_path / 'out3'}")
    assert r.returncode != 0 and "no tokenizer at" in r.stderr and "Traceback" not in r.stderr


def test_parquet_input_gives_the_same_shards_as_jsonl(tmp_path, tokenizer_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = make_texts(40, seed=3)
    src_jsonl = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    pq.write_table(pa.table({"content": texts}), tmp_path / "in.parquet")
    a = prepare([src_jsonl], tokenizer_dir, str(tmp_path / "a"), validation_fraction=0.2)
    b = prepare([str(tmp_path / "in.parquet")], tokenizer_dir, str(tmp_path / "b"), validation_fraction=0.2,
                text_field="content")
    assert a["splits"] == b["splits"] and a["splits"]["validation"]["documents"] > 0
    for split in ("train", "validation"):
        assert stored(str(tmp_path / "a"), split) == stored(str(tmp_path / "b"), split)
