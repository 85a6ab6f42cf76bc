"""Remixing reaches target weights by up- and down-sampling."""

import json
import random

import pytest

from corpus_testlib import small_config
from dsllm.data.corpus.pipeline import run
from dsllm.data.corpus.remix import sampling_rates


def test_sampling_rates():
    rates = sampling_rates({"web": 800, "code": 150, "math": 50}, {"web": 0.5, "code": 0.3, "math": 0.2}, None)
    assert rates["web"] == pytest.approx(0.625) and rates["math"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="math"):
        sampling_rates({"web": 1, "math": 1}, {"web": 1.0}, None)
    with pytest.raises(ValueError, match="books"):
        sampling_rates({"web": 1}, {"web": 1.0, "books": 1.0}, None)


@pytest.mark.parametrize("unit", ["documents", "bytes"])
def test_remix_reaches_target_within_2_percent(tmp_path, write_jsonl, unit):
    rng = random.Random(0)
    sizes = {"web": 6000, "code": 1500, "math": 500}
    inputs = []
    for src, n in sizes.items():
        recs = [{"id": f"{src}{i}", "text": " ".join(rng.choice(["alpha", "beta", "gamma"]) for _ in range(
            rng.randint(5, 60)))} for i in range(n)]
        inputs.append({"source": src, "paths": write_jsonl(f"raw/{src}.jsonl", recs)})
    target = {"web": 0.5, "code": 0.3, "math": 0.2}
    cfg = small_config(inputs, tmp_path / "w", **{"exact_dedup.enabled": False, "minhash.enabled": False,
                                                  "filters.enabled": False, "remix.unit": unit})
    cfg.remix.weights = target
    rep = json.load(open(run(cfg)))
    mix = rep["stages"]["remix"]["mixture"]
    for src, w in target.items():
        assert abs(mix["achieved"][src] - w) < 0.02, mix
    # math was upsampled (copies), web downsampled
    out = rep["stages"]["remix"]["out_by_source"]["documents"]
    assert out["math"] > sizes["math"] and out["web"] < sizes["web"]


def test_remix_is_deterministic(tmp_path, write_jsonl):
    recs = [{"id": f"d{i}", "text": f"document number {i}"} for i in range(300)]
    p = write_jsonl("raw/a.jsonl", recs)
    q = write_jsonl("raw/b.jsonl", recs[:100])
    outs = []
    for k in range(2):
        cfg = small_config([{"source": "a", "paths": p}, {"source": "b", "paths": q}], tmp_path / f"w{k}",
                           **{"exact_dedup.enabled": False, "minhash.enabled": False, "filters.enabled": False})
        cfg.remix.weights = {"a": 0.5, "b": 0.5}
        outs.append(json.load(open(run(cfg)))["stages"]["remix"]["out_by_source"])
    assert outs[0] == outs[1]
