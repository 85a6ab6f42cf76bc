"""Cross-dump deduplication on a synthetic corpus with planted exact and near duplicates."""

import json

from dsllm.data.corpus import synthetic
from dsllm.data.corpus.pipeline import run

from corpus_testlib import read_stage, small_config


def test_planted_duplicates_removed_distinct_kept(tmp_path):
    recs = synthetic.planted_corpus(n_distinct=500, n_clusters=150, copies=(1, 3), n_dumps=3, seed=3)
    inputs = synthetic.write_dumps(recs, str(tmp_path / "raw"))
    cfg = small_config(inputs, tmp_path / "work", **{"filters.enabled": False})
    report = json.load(open(run(cfg)))
    kept = read_stage(tmp_path / "work", "minhash")
    kept_ids = {r["id"] for r in kept}
    by_id = {r["id"]: r for r in recs}
    assert len(kept_ids) == len(kept)

    # distinct documents: at most 1% removed
    distinct = [r for r in recs if r["kind"] == "distinct"]
    lost = [r for r in distinct if r["id"] not in kept_ids]
    assert len(lost) <= 0.01 * len(distinct), len(lost)

    # planted near duplicates: each cluster keeps one document; a kept near-duplicate beyond that is a miss
    clusters = {}
    for r in recs:
        if r["kind"] != "distinct":
            clusters.setdefault(r["cluster"], []).append(r)
    near_total = sum(r["kind"] == "near" for r in recs)
    missed_near = missed_exact = 0
    for members in clusters.values():
        survivors = [m for m in members if m["id"] in kept_ids]
        assert survivors, "a whole cluster disappeared"
        # original and exact copies are one text to exact dedup: one of them is the rightful survivor
        excused = next((m for m in survivors if m["kind"] != "near"), survivors[0])
        for m in survivors:
            if m is not excused:
                missed_near += m["kind"] == "near"
                missed_exact += m["kind"] == "exact"
    assert near_total > 100
    print(f"near-duplicate recall {1 - missed_near / near_total:.4f} ({missed_near} of {near_total} missed), "
          f"distinct removed {len(lost)} of {len(distinct)}")
    assert 1 - missed_near / near_total >= 0.95, (missed_near, near_total)
    assert missed_exact == 0

    # the report accounts for every document, stage by stage
    st = report["stages"]
    assert st["normalize"]["documents_out"] == len(recs)
    assert st["exact_dedup"]["documents_in"] == len(recs)
    assert st["minhash"]["documents_out"] == len(kept)
    assert st["exact_dedup"]["documents_out"] + 0 == st["minhash"]["documents_in"]
    dropped_exact = st["exact_dedup"]["steps"]["filter/exact-deduplication stage 3"]["dropped"]
    assert st["exact_dedup"]["documents_in"] - dropped_exact == st["exact_dedup"]["documents_out"]
    assert set(st["minhash"]["out_by_dump"]["documents"]) == {"dump-00", "dump-01", "dump-02"}
    assert by_id  # ids are unique


def test_minhash_parameters_are_configurable(tmp_path):
    recs = synthetic.planted_corpus(n_distinct=60, n_clusters=20, copies=(1, 1), near_frac=1.0, seed=5)
    inputs = synthetic.write_dumps(recs, str(tmp_path / "raw"))
    # a single band of many rows demands near-identity: edited copies survive
    strict = small_config(inputs, tmp_path / "strict", **{"filters.enabled": False, "exact_dedup.enabled": False,
                                                          "minhash.num_buckets": 1, "minhash.hashes_per_bucket": 64,
                                                          "minhash.n_grams": 8})
    run(strict)
    loose = small_config(inputs, tmp_path / "loose", **{"filters.enabled": False, "exact_dedup.enabled": False})
    run(loose)
    assert len(read_stage(tmp_path / "strict", "minhash")) > len(read_stage(tmp_path / "loose", "minhash"))
