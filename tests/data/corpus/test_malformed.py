"""Malformed input: a clear error naming file and line, or a counted skip; never a silent loss."""

import gzip
import json

import pytest

from corpus_testlib import read_stage, small_config
from dsllm.data.corpus.pipeline import CorpusConfigError, run
from dsllm.data.corpus.reader import CorpusInputError

GOOD = {"id": "ok", "text": "A fine document."}


def make_inputs(write_jsonl):
    good = json.dumps(GOOD).encode()
    return [
        {"source": "s", "dump": "d1", "paths": write_jsonl("raw/bad_json.jsonl", None,
                                                          raw=good + b"\n{not json\n")},
        {"source": "s", "dump": "d1", "paths": write_jsonl("raw/no_text.jsonl", [{"id": "x", "body": "b"}, GOOD])},
        {"source": "s", "dump": "d2", "paths": write_jsonl("raw/latin1.jsonl", None,
                                                          raw=b'{"text": "caf\xe9"}\n' + good + b"\n")},
        {"source": "s", "dump": "d2", "paths": write_jsonl("raw/empty.jsonl", None, raw=b"")},
    ]


@pytest.mark.parametrize("which,msg", [(0, "invalid json"), (1, "missing text"), (2, "non utf8"), (3, "empty file")])
def test_raise_names_the_problem(tmp_path, write_jsonl, which, msg):
    inputs = make_inputs(write_jsonl)[which:which + 1]
    cfg = small_config(inputs, tmp_path / "w", **{"exact_dedup.enabled": False, "minhash.enabled": False,
                                                  "filters.enabled": False})
    with pytest.raises(CorpusInputError, match=msg) as e:
        run(cfg)
    assert inputs[0]["paths"] in str(e.value)


def test_skip_counts_every_bad_record(tmp_path, write_jsonl):
    cfg = small_config(make_inputs(write_jsonl), tmp_path / "w", on_error="skip",
                       **{"exact_dedup.enabled": False, "minhash.enabled": False, "filters.enabled": False})
    rep = json.load(open(run(cfg)))
    st = rep["stages"]["normalize"]
    reasons = st["steps"]["normalize/dsllm corpus reader"]["reasons"]
    assert reasons == {"skipped_invalid_json": 1, "skipped_missing_text": 1, "skipped_non_utf8": 1,
                       "skipped_empty_file": 1}
    assert st["documents_out"] == 3 == len(read_stage(tmp_path / "w", "normalize"))


def test_config_errors(tmp_path, write_jsonl):
    cfg = small_config([{"source": "s", "paths": str(tmp_path / "missing.jsonl")}], tmp_path / "w")
    with pytest.raises(CorpusInputError, match="matches no file"):
        run(cfg)
    cfg = small_config([], tmp_path / "w")
    with pytest.raises(CorpusConfigError, match="inputs"):
        run(cfg)
    cfg = small_config([{"source": "s", "paths": write_jsonl("a.jsonl", [GOOD])}], tmp_path / "w2")
    with pytest.raises(CorpusConfigError, match="run stage"):
        run(cfg, ["filter"])  # earlier stages have not run


def test_parquet_and_gzip_inputs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["from parquet", "second"], "id": ["p1", "p2"]}), tmp_path / "a.parquet")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "from gzip"}) + "\n")
    cfg = small_config([{"source": "pq", "paths": str(tmp_path / "a.parquet")},
                        {"source": "gz", "paths": str(tmp_path / "b.jsonl.gz")}], tmp_path / "w",
                       **{"exact_dedup.enabled": False, "minhash.enabled": False, "filters.enabled": False})
    run(cfg)
    texts = sorted(r["text"] for r in read_stage(tmp_path / "w", "normalize"))
    assert texts == ["from gzip", "from parquet", "second"]


def test_bad_config_fails_before_any_work(tmp_path, write_jsonl):
    path = write_jsonl("a.jsonl", [GOOD])
    for over, msg in [({"filters.gopher_quality.min_doc_wordz": 3}, "min_doc_wordz"),
                      ({"tokenize.enabled": True, "tokenize.tokenizer": str(tmp_path / "none")}, "tokenize.tokenizer")]:
        cfg = small_config([{"source": "s", "paths": path}], tmp_path / "w", **over)
        with pytest.raises(CorpusConfigError, match=msg):
            run(cfg)
        assert not (tmp_path / "w").exists()
    cfg = small_config([{"source": "s", "paths": path}], tmp_path / "w")
    with pytest.raises(CorpusConfigError, match="unknown stage"):
        run(cfg, ["normalize", "nonsense"])
    assert not (tmp_path / "w").exists()
