"""The whole tool from the command line, with the stand-in trainer: plan -> run -> fit (plots)
-> a plan at 3x the largest budget centred on the fitted law -> run -> predict against it -> suggest."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args, ok=True):
    p = subprocess.run([sys.executable, "-m", "dsllm.scaling", *args], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_study_from_the_command_line(tmp_path, fake_trainer):
    trainer = "--trainer=" + " ".join(fake_trainer)
    study, check = str(tmp_path / "study"), str(tmp_path / "check")
    common = ["--seq_len=256", "--vocab=1000", "--eval_tokens=10000"]
    plan = json.loads(cli("plan", "--budgets=3e15,1e16,3e16,1e17", "--per_budget=6", "--span=30", f"--out={study}",
                          "--set=model.attention=cudnn", "--json", *common).stdout)
    assert len(plan["runs"]) == 24 and plan["out"] == study
    out = cli("run", f"--plan={study}", trainer, "--parallel=4").stdout
    assert "finished 24" in out

    printed = cli("run", f"--plan={study}", trainer, "--print_commands").stdout.splitlines()
    assert len(printed) == 24 and "--config.model.attention=cudnn" in printed[0]

    fit = json.loads(cli("fit", f"--results={study}/results.csv", "--json", f"--plot={tmp_path}/plots",
                         "--predict=3e17", "--n_boot=200").stdout)
    for key in ("m_base", "a", "d_base", "b"):
        assert isinstance(fit[key], float) and len(fit[key + "_interval"]) == 2
    assert fit["loss_unit"] == "bits-per-byte" and len(fit["budgets"]) == 4
    assert sorted(os.listdir(tmp_path / "plots")) == ["d_opt.png", "isoflop.png", "loss_vs_compute.png", "m_opt.png"]
    # the stand-in's surface has alpha = beta: the optimum grows as C^0.5
    assert fit["a"] == pytest.approx(0.5, abs=0.03)

    cplan = json.loads(cli("plan", "--budgets=3e17", "--per_budget=1", f"--results={study}/results.csv",
                           f"--out={check}", "--json", *common).stdout)
    (run,) = cplan["runs"]
    assert run["m_target"] == pytest.approx(fit["m_base"] * 3e17 ** fit["a"], rel=1e-6)
    cli("run", f"--plan={check}", trainer)
    pred = json.loads(cli("predict", f"--results={study}/results.csv", f"--holdout={check}/results.csv",
                          "--json", "--n_boot=200").stdout)
    (p,) = pred["predictions"]
    assert p["compute"] == 3e17 and p["extrapolation"] == pytest.approx(3.0)
    assert abs(p["relative_error"]) < 0.03 and "actual" in p
    text = cli("predict", f"--results={study}/results.csv", "--compute=3e17", "--n_boot=100").stdout
    assert "C = 3e+17: L_opt =" in text

    cfg = str(tmp_path / "suggested.py")
    s = json.loads(cli("suggest", "--compute=3e17", f"--results={study}/results.csv", f"--out={cfg}",
                       "--base_config=configs/scaling_base.py", "--json", *common).stdout)
    assert s["n_layers"] == run["n_layers"] and s["d_model"] == run["d_model"]
    text = open(cfg).read()
    assert f"n_layers={run['n_layers']}" in text and "def get_config" in text


def test_hparams_refit_from_a_grid_csv(tmp_path):
    import numpy as np

    rows = ["compute,batch_tokens,learning_rate,loss"]
    for c in [1e17, 1e18, 1e19]:
        b_star, lr_star = 0.29 * c**0.33, 0.31 * c**-0.125
        for b in np.geomspace(1e4, 1e7, 16):
            for lr in np.geomspace(1e-4, 1e-2, 16):
                loss = 2 * c**-0.04 * (1 + 0.004 * np.log(b / b_star) ** 2 + 0.005 * np.log(lr / lr_star) ** 2)
                rows.append(f"{c},{b},{lr},{loss}")
    (tmp_path / "grid.csv").write_text("\n".join(rows) + "\n")
    r = json.loads(cli("hparams", f"--fit={tmp_path}/grid.csv", "--json", "--n_boot=100").stdout)
    assert r["batch_exponent"] == pytest.approx(0.33, abs=0.04) and r["lr_exponent"] == pytest.approx(-0.125, abs=0.04)
    assert len(r["batch_exponent_interval"]) == 2 and r["paper"]["lr_base"] == 0.3118
    text = cli("hparams", f"--fit={tmp_path}/grid.csv", "--n_boot=50").stdout
    assert "near-optimal runs (within 0.25%" in text and "learning_rate = " in text


def test_errors_are_one_clear_line(tmp_path):
    p = cli("fit", f"--results={tmp_path}/none.csv", ok=False)
    assert p.returncode == 2 and "no results file" in p.stderr and "Traceback" not in p.stderr
    p = cli("run", f"--plan={tmp_path}", ok=False)
    assert p.returncode == 2 and "no plan at" in p.stderr
    p = cli("plan", "--budgets=1e17", ok=False)
    assert p.returncode == 2 and "--out" in p.stderr
    (tmp_path / "bad.csv").write_text("compute,m\n1e17,3e8\n")
    p = cli("fit", f"--results={tmp_path}/bad.csv", ok=False)
    assert p.returncode == 2 and "lacks column" in p.stderr and "'loss'" in p.stderr
    p = cli("nonsense", ok=False)
    assert p.returncode == 2 and "flops" in p.stderr
