"""Each quality filter passes a good document and drops a bad one under the expected reason."""

import pytest
from datatrove.data import Document

from dsllm.data.corpus.config import default_config
from dsllm.data.corpus.quality import build_filters
from dsllm.data.corpus.synthetic import TextGen

GOOD = "\n\n".join(TextGen(7).body(5))


def filters():
    cfg = default_config().filters
    cfg.fineweb.enabled = True
    return {type(f).__name__: f for f in build_filters(cfg)}


def verdict(f, text):
    res = f.filter(Document(text=text, id="x"))
    return (res, None) if isinstance(res, bool) else res


@pytest.mark.parametrize("name", ["GopherQualityFilter", "GopherRepetitionFilter", "C4QualityFilter",
                                  "FineWebQualityFilter"])
def test_good_document_passes(name):
    ok, reason = verdict(filters()[name], GOOD)
    assert ok, reason


@pytest.mark.parametrize("name,text,reason", [
    ("GopherQualityFilter", "The cat and the dog sat with a friend.", "gopher_short_doc"),
    ("GopherQualityFilter", " ".join(["extraordinarilylongwordsonly"] * 80) + " the and", "gopher_above_avg_threshold"),
    ("GopherQualityFilter", " ".join(["a", "b", "c", "of", "to"] * 30), "gopher_below_avg_threshold"),
    ("GopherQualityFilter", " ".join(f"#tag{i} the and word" for i in range(40)), "gopher_too_many_hashes"),
    ("GopherQualityFilter", "\n".join(f"- item number {i} with the list and more" for i in range(60)),
     "gopher_too_many_bullets"),
    ("GopherQualityFilter", "\n".join(f"the story and more goes on and on with the cat in the old house {i}..."
                                      for i in range(60)),
     "gopher_too_many_end_ellipsis"),
    ("GopherQualityFilter", " ".join(["12345 67890 13579 24680 11111 the and word"] * 20), "gopher_below_alpha_threshold"),
    ("GopherQualityFilter", " ".join(["lorem ipsum dolor sit amet consectetur"] * 20), "gopher_enough_stop_words"),
    ("GopherRepetitionFilter", "\n".join(["The same line with the same words and content."] * 30), "dup_line_frac"),
    ("GopherRepetitionFilter", " ".join(["the cat sat on the mat and"] * 60), "top_2_gram"),
    ("C4QualityFilter", GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing.", "lorem_ipsum"),
    ("C4QualityFilter", GOOD + "\nfunction f() { return 1; } is the code here.", "curly_bracket"),
    ("C4QualityFilter", "One sentence only here. And a second one now.", "too_few_sentences"),
    ("FineWebQualityFilter", "\n".join(["short line"] * 40), "line_punct_ratio"),
])
def test_bad_document_fails_with_reason(name, text, reason):
    ok, why = verdict(filters()[name], text)
    assert not ok and why == reason, (ok, why)


def test_thresholds_are_configurable():
    cfg = default_config().filters
    cfg.gopher_quality.min_doc_words = 5
    f = {type(x).__name__: x for x in build_filters(cfg)}["GopherQualityFilter"]
    assert verdict(f, "The cat and the dog sat with a friend.")[0]
    cfg.c4.enabled = False
    assert "C4QualityFilter" not in {type(x).__name__ for x in build_filters(cfg)}
    cfg.gopher_quality.no_such_option = 1
    with pytest.raises(ValueError, match="no_such_option"):
        build_filters(cfg)


def test_filter_stage_counts_reasons(tmp_path, write_jsonl):
    import json

    from corpus_testlib import read_stage, small_config
    from dsllm.data.corpus.pipeline import run

    recs = [{"text": GOOD, "id": "good"}, {"text": "Too short to keep.", "id": "short"},
            {"text": "\n".join(["The same line with the same words and content."] * 30), "id": "rep"}]
    path = write_jsonl("in/a.jsonl", recs)
    cfg = small_config([{"source": "web", "paths": path}], tmp_path / "w",
                       **{"exact_dedup.enabled": False, "minhash.enabled": False})
    rep = json.load(open(run(cfg)))
    kept = read_stage(tmp_path / "w", "filter")
    assert [r["id"] for r in kept] == ["good"]
    steps = rep["stages"]["filter"]["steps"]
    assert steps["filter/Gopher Quality"]["reasons"]["dropped_gopher_short_doc"] == 1
    removed = tmp_path / "w" / "04_filter" / "removed"
    assert removed.exists()
