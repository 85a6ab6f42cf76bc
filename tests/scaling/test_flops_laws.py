"""Formula (2) / Table 3 and Formula (1) / (4) values from the paper."""

import json
import os
import subprocess
import sys

import pytest

from dsllm.scaling.flops import TABLE3, TABLE3_SEQ_LEN, TABLE3_VOCAB, m_flops, model_scale, n1, n2
from dsllm.scaling.laws import D_OPT_LAW, M_OPT_LAW, hyperparams, optimal_scale

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The formulas' exact ratios (reference notes, "DERIVED recomputation") and M in billions.
EXACT = [(0.429, 1.321, 0.352), (0.529, 1.020, 0.963), (0.600, 0.808, 3.020), (0.750, 0.880, 9.664),
         (0.857, 0.913, 45.097), (0.882, 0.919, 85.564), (0.923, 0.935, 418.759)]


def test_formula2_small_row_exactly():
    assert n1(8, 512) == 25_165_824
    assert n2(8, 512, 102400) == 77_594_624
    assert m_flops(8, 512, 4096) == 352_321_536


@pytest.mark.parametrize("row,exact", list(zip(TABLE3, EXACT)))
def test_table3(row, exact):
    layers, width, r1_printed, r2_printed = row
    s = model_scale(layers, width, TABLE3_SEQ_LEN, TABLE3_VOCAB)
    assert s["six_n1_over_m"] == pytest.approx(exact[0], abs=5e-4)
    assert s["six_n2_over_m"] == pytest.approx(exact[1], abs=5e-4)
    assert s["m"] / 1e9 == pytest.approx(exact[2], abs=5e-4)
    # the printed table agrees to its two decimals, within its one slip (0.85 printed for 0.857)
    assert s["six_n1_over_m"] == pytest.approx(r1_printed, abs=0.01)
    assert s["six_n2_over_m"] == pytest.approx(r2_printed, abs=0.005)


def test_table3_rounding_slip():
    s = model_scale(32, 4096, 4096, 102400)
    assert round(s["six_n1_over_m"], 2) == 0.86  # the paper prints 0.85


@pytest.mark.parametrize("c,lr,batch", [(1e17, 2.338e-3, 1.062e5), (1e19, 1.315e-3, 4.789e5),
                                        (1e20, 9.860e-4, 1.017e6), (3e20, 8.595e-4, 1.457e6)])
def test_formula1(c, lr, batch):
    hp = hyperparams(c, seq_len=4096)
    assert hp["learning_rate"] == pytest.approx(lr, rel=1e-3)
    assert hp["batch_tokens"] == pytest.approx(batch, rel=1e-3)
    assert hp["batch_sequences"] == round(batch / 4096)


def test_formula1_reproduces_released_7b_and_67b():
    c7 = m_flops(30, 4096, 4096) * 2.0e12
    c67 = m_flops(95, 8192, 4096) * 2.0e12
    assert hyperparams(c7)["learning_rate"] == pytest.approx(4.246e-4, rel=1e-3)   # Table 2: 4.2e-4
    assert hyperparams(c67)["learning_rate"] == pytest.approx(3.120e-4, rel=1e-3)  # Table 2: 3.2e-4
    assert hyperparams(c7, 4096)["batch_sequences"] == 2252                         # Table 2: 2304


def test_formula4():
    o = optimal_scale(1e17)
    assert o["m_opt"] == pytest.approx(1.404e8, rel=1e-3)
    assert o["d_opt"] == pytest.approx(7.123e8, rel=1e-3)
    assert M_OPT_LAW(3e20) == pytest.approx(9.342e9, rel=1e-3)
    assert D_OPT_LAW(3e20) == pytest.approx(3.212e10, rel=1e-3)
    assert M_OPT_LAW.exponent + D_OPT_LAW.exponent == pytest.approx(1.0)


def test_bad_compute_is_refused():
    with pytest.raises(ValueError, match="positive"):
        hyperparams(0)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-m", "dsllm.scaling", *args], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_cli_flops_and_hparams_json():
    r = json.loads(_cli("flops", "--n_layer=24", "--d_model=1024", "--seq_len=4096", "--vocab=102400", "--json"))
    assert set(r) >= {"n1", "n2", "m", "six_n1_over_m", "six_n2_over_m"}
    assert r["n1"] == 12 * 24 * 1024**2 and round(r["six_n2_over_m"], 3) == 0.808
    h = json.loads(_cli("hparams", "--compute=1e17", "--seq_len=4096", "--json"))
    assert h["batch_sequences"] == 26 and h["learning_rate"] == pytest.approx(2.338e-3, rel=1e-3)
