"""launch/scaling_study.sh at toy scale: the real corpus, tokenizer and shard stages, then the
sweep, fits, prediction and check run through the stand-in trainer (whose loss surface has a known
optimum); then the same command again, which must redo nothing; then on a "new machine" (the
study directory gone) with the exported results.csv, which must rebuild the same data and plan
and train only the check run."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_study_script_end_to_end(tmp_path, fake_trainer):
    pytest.importorskip("tokenizers")
    lib = os.path.dirname(os.__file__)
    env = dict(os.environ, STUDY=str(tmp_path / "study"), RESULTS=str(tmp_path / "export"), PYTHON=sys.executable,
               ROOTS=",".join(os.path.join(lib, d) for d in ("json", "email", "logging")), VOCAB="400", SEQ_LEN="64",
               BUDGETS="3e13,1e14,3e14", PER_BUDGET="6", SPAN="30", M_LAW="0.0685,0.5", PARALLEL="4",
               CORPUS_MB="1", TOKENIZER_MB="0.3", VALIDATION_FRACTION="0.1", TRAINER=" ".join(fake_trainer),
               TIME_LIMIT="300", N_BOOT="200")
    env.pop("OUT", None)
    p = subprocess.run(["bash", os.path.join(ROOT, "launch", "scaling_study.sh")], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and "COMPLETE" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
    export = tmp_path / "export"
    assert sorted(os.listdir(export)) == sorted(["results.csv", "fit.json", "prediction.json", "isoflop.png",
                                                 "m_opt.png", "d_opt.png", "loss_vs_compute.png", "study.tar.gz"])
    fit = json.load(open(export / "fit.json"))
    assert fit["a"] == pytest.approx(0.5, abs=0.05)  # the stand-in's alpha = beta
    (pred,) = json.load(open(export / "prediction.json"))["predictions"]
    assert pred["compute"] == pytest.approx(9e14) and abs(pred["relative_error"]) < 0.05
    before = json.load(open(tmp_path / "study" / "prediction_before.json"))["predictions"][0]
    assert before["loss"] == pytest.approx(pred["loss"])  # predicted before the check run existed
    manifest = json.load(open(tmp_path / "study" / "tokens" / "manifest.json"))
    assert manifest["vocab_size"] == 400 and manifest["splits"]["validation"]["documents"] > 0

    again = subprocess.run(["bash", os.path.join(ROOT, "launch", "scaling_study.sh")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "COMPLETE" in again.stdout
    assert "start " not in again.stdout and "token shards" not in again.stdout  # nothing redone

    shutil.copy(export / "results.csv", tmp_path / "carried.csv")
    shutil.rmtree(tmp_path / "study")
    env["RESUME_RESULTS"] = str(tmp_path / "carried.csv")
    fresh = subprocess.run(["bash", os.path.join(ROOT, "launch", "scaling_study.sh")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert fresh.returncode == 0 and "COMPLETE" in fresh.stdout, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    started = [l for l in fresh.stdout.splitlines() if l.startswith("start ")]
    assert len(started) == 1 and started[0].startswith("start C9e14")  # only the check run
    assert json.load(open(export / "fit.json"))["a"] == fit["a"]
