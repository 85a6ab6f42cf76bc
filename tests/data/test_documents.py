"""The one raw-document reader (dsllm/data/documents.py) behind prepare and the tokenizer."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsllm.data.documents import InputError, expand_inputs, file_format, read_documents


def test_formats_from_the_name_and_forced():
    assert [file_format(p) for p in ("a.jsonl", "a.json.gz", "a.ndjson", "a.parquet", "a.txt", "a.md.gz")] == \
        ["jsonl", "jsonl", "jsonl", "parquet", "text", "text"]
    assert file_format("a.txt", "jsonl") == "jsonl"
    with pytest.raises(InputError, match="unknown input format 'csv'"):
        file_format("a.csv", "csv")


def test_each_format_reads_every_document_exactly(tmp_path):
    docs = ["first\r\nline two", "naïve 東京 🎉", "  spaces kept  "]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps({"body": d}) for d in docs))
    pq.write_table(pa.table({"text": docs, "id": [1, 2, 3]}), tmp_path / "c.parquet")
    (tmp_path / "d.txt").write_bytes(docs[0].encode())  # \r\n stays: bytes per document are exact

    assert list(read_documents([str(tmp_path / "a.jsonl")])) == docs
    assert list(read_documents([str(tmp_path / "b.jsonl.gz")], text_field="body")) == docs
    assert list(read_documents([str(tmp_path / "c.parquet")])) == docs
    assert list(read_documents([str(tmp_path / "d.txt")])) == [docs[0]]


def test_text_paragraphs_and_chunks(tmp_path):
    (tmp_path / "p.txt").write_text("one\nstill one\n\ntwo\r\n \r\nthree\n", newline="")
    assert list(read_documents([str(tmp_path / "p.txt")], split_on_blank_lines=True)) == \
        ["one\nstill one", "two", "three"]
    lines = [f"line {i:04d}\n" for i in range(1000)]
    (tmp_path / "big.txt").write_text("".join(lines))
    chunks = list(read_documents([str(tmp_path / "big.txt")], text_chunk_chars=1000))
    assert "".join(chunks) == "".join(lines) and len(chunks) == 10
    assert all(c.endswith("\n") for c in chunks)


def test_bad_records_stop_or_are_counted(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n{"body": "x"}\n{"text": 3}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not valid JSON .*--skip_bad_lines"):
        list(read_documents([str(tmp_path / "bad.jsonl")]))
    counts = {}
    assert list(read_documents([str(tmp_path / "bad.jsonl")], skip_bad_lines=True, counts=counts)) == ["ok"]
    assert counts["bad_lines"] == 3

    pq.write_table(pa.table({"text": ["a", None, "c"]}), tmp_path / "nulls.parquet")
    with pytest.raises(InputError, match=r"nulls\.parquet: row 2: column 'text' is null"):
        list(read_documents([str(tmp_path / "nulls.parquet")]))
    counts = {}
    assert list(read_documents([str(tmp_path / "nulls.parquet")], skip_bad_lines=True, counts=counts)) == ["a", "c"]
    assert counts["bad_lines"] == 1
    with pytest.raises(InputError, match=r"no 'body' column \(found \['text'\]\)"):
        list(read_documents([str(tmp_path / "nulls.parquet")], text_field="body"))
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="fake.parquet is not a Parquet file"):
        list(read_documents([str(tmp_path / "fake.parquet")]))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="latin1.txt is not UTF-8"):
        list(read_documents([str(tmp_path / "latin1.txt")]))


def test_expand_inputs(tmp_path):
    for name in ("b.txt", "a.txt", ".hidden", "c.jsonl"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    d = str(tmp_path)
    # a directory gives its files (sorted, no hidden ones, no subdirectories); each file once
    assert expand_inputs(f"{d}/c.jsonl,{d}") == [f"{d}/c.jsonl", f"{d}/a.txt", f"{d}/b.txt"]
    assert expand_inputs([f"{d}/*.txt"]) == [f"{d}/a.txt", f"{d}/b.txt"]
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs(f"{d}/*.parquet")
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs(f"{d}/missing.txt")
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs(f"{d}/sub")
    with pytest.raises(InputError, match="no input files"):
        expand_inputs(" , ")
