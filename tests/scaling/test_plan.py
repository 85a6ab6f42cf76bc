"""The depth/width rule and IsoFLOP plans."""

import json
import math

import numpy as np
import pytest

from dsllm.scaling.laws import M_OPT_LAW, hyperparams
from dsllm.scaling.plan import COMMANDS_FILE, PlanError, PlanSettings, make_plan, read_plan, write_plan
from dsllm.scaling.shapes import ModelShape, ffn_dim_for, shape_for_m

PAPER_BUDGETS = [1e17, 3e17, 1e18, 3e18, 1e19, 3e19, 1e20, 3e20]


def _check_shape(run):
    d, hd = run["d_model"], run["head_dim"]
    assert hd == (64 if d < 1024 else 128)
    assert d % hd == 0 and run["n_heads"] * hd == d and run["n_heads"] >= 1
    assert run["n_kv_heads"] == run["n_heads"]
    assert run["n_layers"] >= 1
    assert run["ffn_dim"] >= 8 * d / 3 and run["ffn_dim"] % 64 == 0


def test_rule_gives_valid_models_over_the_paper_range():
    plan = make_plan(PlanSettings(budgets=PAPER_BUDGETS, per_budget=10, seq_len=4096))
    assert not plan["warnings"]
    for budget in PAPER_BUDGETS:
        runs = [r for r in plan["runs"] if r["budget"] == budget]
        assert len(runs) == 10  # ten distinct shapes, as the paper's "around 10" allocations
        assert len({(r["n_layers"], r["d_model"]) for r in runs}) == 10
        ms = [r["m"] for r in runs]
        assert ms == sorted(ms)
        # the sizes straddle Formula (4)'s optimum by the span (16 -> a factor 4 either side)
        assert ms[0] < M_OPT_LAW(budget) / 3 and ms[-1] > M_OPT_LAW(budget) * 3
        hp = hyperparams(budget, 4096)
        for r in runs:
            _check_shape(r)
            # within the rule's 5% wherever widths are fine enough (one small model misses by 6.5%)
            assert abs(math.log(r["m"] / r["m_target"])) <= math.log(1.05 if r["m"] > 1e8 else 1.10)
            assert 32 <= r["d_model"] / r["n_layers"] <= 128
            assert r["tokens"] == r["steps"] * r["global_batch"] * 4096
            assert r["compute"] == pytest.approx(budget, rel=0.01)
            assert r["global_batch"] == hp["batch_sequences"]
            assert r["peak_lr"] == pytest.approx(hp["learning_rate"], rel=1e-3)
            assert r["steps"] >= 1000
            o = r["overrides"]
            assert o["train.steps"] == r["steps"] and o["model.n_layers"] == r["n_layers"]
            assert o["optim.warmup_steps"] == min(2000, r["steps"] // 20)
            assert o["model.vocab_size"] == 102400


def test_deepseek_shapes_are_what_the_rule_calls_valid():
    assert ffn_dim_for(4096) == 11008 and ffn_dim_for(8192) == 22016
    s = ModelShape(30, 4096)
    assert (s.n_heads, s.head_dim) == (32, 128)


@pytest.mark.parametrize("target", [1.4e8, 5e9, 9.3e9, 6e10])
def test_shape_for_m_is_close_and_near_the_aspect(target):
    s = shape_for_m(target, 4096)
    assert abs(s.m(4096) / target - 1) <= 0.05
    assert 32 <= s.aspect <= 128
    # among the shapes within 5%, the one nearest the aspect ratio 64
    for layers in range(1, 80):
        for d in range(64, 8192, 64):
            o = ModelShape(layers, d)
            if o.d_model % o.head_dim == 0 and 32 <= o.aspect <= 128 and abs(o.m(4096) / target - 1) <= 0.05:
                assert abs(math.log(s.aspect / 64)) <= abs(math.log(o.aspect / 64)) + 1e-12


@pytest.mark.parametrize("target", [3e6, 4.2e7])
def test_small_targets_take_the_closest_model(target):
    s = shape_for_m(target, 4096)
    best = min((abs(math.log(ModelShape(l, d).m(4096) / target)), l, d)
               for l in range(1, 20) for d in range(64, 1024, 64) if 32 <= d / l <= 128)
    assert abs(math.log(s.m(4096) / target)) == pytest.approx(best[0])


def test_tiny_targets_fall_back_to_the_nearest_model():
    s = shape_for_m(1e4, 512)  # below every real model
    assert (s.n_layers, s.d_model) == (1, 64)


def test_small_budgets_merge_targets_that_share_a_shape():
    plan = make_plan(PlanSettings(budgets=[1e13], per_budget=10, span=30, seq_len=512, vocab=4096))
    names = [r["name"] for r in plan["runs"]]
    assert len(names) == len(set(names)) < 10
    assert any("distinct shapes" in w for w in plan["warnings"])


def test_degenerate_runs_are_reported():
    plan = make_plan(PlanSettings(budgets=[1e12], per_budget=3, seq_len=4096))
    assert any("steps" in w for w in plan["warnings"])


def test_batch_multiple_and_eval_tokens():
    plan = make_plan(PlanSettings(budgets=[1e15], per_budget=3, seq_len=512, batch_multiple=8, eval_tokens=100_000))
    for r in plan["runs"]:
        assert r["global_batch"] % 8 == 0
        assert r["overrides"]["train.eval_batches"] * r["global_batch"] * 512 >= 100_000
        assert r["overrides"]["train.eval_every"] == r["steps"]


def test_write_read_and_refuse_a_different_plan(tmp_path):
    s = PlanSettings(budgets=[1e15, 1e16], per_budget=3, seq_len=512, vocab=4096, data_path="/data/tok",
                     extra={"model.attention": "cudnn"})
    plan = make_plan(s)
    write_plan(plan, str(tmp_path))
    write_plan(plan, str(tmp_path))  # the same plan again is fine
    assert read_plan(str(tmp_path)) == json.loads(json.dumps(plan))
    lines = [l for l in open(tmp_path / COMMANDS_FILE) if not l.startswith("#")]
    assert len(lines) == len(plan["runs"]) == 6
    assert "--config.data.path=/data/tok" in lines[0] and "--config.model.attention=cudnn" in lines[0]
    assert f"--config.train.steps={plan['runs'][0]['steps']}" in lines[0]
    other = make_plan(PlanSettings(budgets=[1e15], per_budget=3, seq_len=512, vocab=4096))
    with pytest.raises(PlanError, match="different plan"):
        write_plan(other, str(tmp_path))
    write_plan(other, str(tmp_path), force=True)
    assert len(read_plan(str(tmp_path))["runs"]) == 3


def test_plan_centred_on_a_given_law():
    s = PlanSettings(budgets=[1e18], per_budget=1, seq_len=2048, m_law=(0.05, 0.55))
    (run,) = make_plan(s)["runs"]
    assert run["m_target"] == pytest.approx(0.05 * 1e18**0.55)


def test_bad_settings():
    with pytest.raises(PlanError):
        make_plan(PlanSettings(budgets=[]))
    with pytest.raises(PlanError):
        make_plan(PlanSettings(budgets=[-1.0]))
    with pytest.raises(PlanError, match="no plan"):
        read_plan("/nonexistent")


def test_suggest_writes_a_loadable_config(tmp_path, base_config):
    pytest.importorskip("ml_collections")
    from dsllm.config import load_config
    from dsllm.scaling.suggest import render_config, suggest_run

    run = suggest_run(PlanSettings(budgets=[], base_config=base_config, seq_len=1024, vocab=8192,
                                   evals_per_run=10), 1e18)
    path = tmp_path / "suggested.py"
    path.write_text(render_config(base_config, run, "test"))
    c = load_config(str(path))
    assert (c.model.n_layers, c.model.d_model, c.model.n_heads) == (run["n_layers"], run["d_model"], run["n_heads"])
    assert c.train.steps == run["steps"] and c.train.global_batch == run["global_batch"]
    assert c.train.seq_len == 1024 and c.model.vocab_size == 8192
    assert c.optim.peak_lr == pytest.approx(hyperparams(1e18)["learning_rate"], rel=1e-3)
    assert tuple(c.optim.decay_fractions) == (0.8, 0.9) and tuple(c.optim.decay_factors) == (0.316, 0.1)
    assert c.train.eval_every == run["steps"] // 10
    assert abs(np.log(run["m"] / M_OPT_LAW(1e18))) < np.log(1.05)
