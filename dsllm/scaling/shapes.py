"""The depth/width rule: the model shape that realises a target model scale M.

Shapes are LLaMA/DeepSeek-like: d_model a multiple of the head dimension (64 below a width of
1024, 128 from 1024 on, as in DeepSeek 7B/67B), multi-head attention (n_kv_heads = n_heads),
SwiGLU width 8/3 d_model rounded up to a multiple of 64 (256 from a width of 1024 on: 4096 ->
11008 and 8192 -> 22016, DeepSeek's sizes).

Rule, for a target M at sequence length S and aspect ratio r (d_model / n_layers, default 64):
  1. candidates: every (n_layers, d_model) with d_model / n_layers in [r/2, 2r];
  2. among candidates whose M is within `tolerance` (5%) of the target, take the aspect ratio
     closest to r (in log), ties to the closer M;
  3. when none is that close (the smallest models, where widths come in steps of 64), take the
     candidate of closest M.
Step 1 keeps every model in the range where loss depends little on shape (Kaplan et al. 2020);
step 2 keeps M close to the plan, so that an IsoFLOP curve is sampled where it was meant to be.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from dsllm.scaling.flops import m_flops

MAX_LAYERS = 256
MAX_WIDTH = 32768


def head_dim_for(d_model: int) -> int:
    return 64 if d_model < 1024 else 128


def ffn_dim_for(d_model: int) -> int:
    multiple = 64 if d_model < 1024 else 256
    return -(-8 * d_model // (3 * multiple)) * multiple


@dataclasses.dataclass(frozen=True)
class ModelShape:
    n_layers: int
    d_model: int

    @property
    def head_dim(self) -> int:
        return head_dim_for(self.d_model)

    @property
    def n_heads(self) -> int:
        return self.d_model // self.head_dim

    @property
    def n_kv_heads(self) -> int:
        return self.n_heads

    @property
    def ffn_dim(self) -> int:
        return ffn_dim_for(self.d_model)

    @property
    def aspect(self) -> float:
        return self.d_model / self.n_layers

    def m(self, seq_len: int) -> int:
        return m_flops(self.n_layers, self.d_model, seq_len)

    def as_dict(self) -> dict:
        return dict(n_layers=self.n_layers, d_model=self.d_model, n_heads=self.n_heads,
                    n_kv_heads=self.n_kv_heads, head_dim=self.head_dim, ffn_dim=self.ffn_dim)


def _valid_width(d: int) -> bool:
    return d >= 64 and d % head_dim_for(d) == 0


@functools.lru_cache(maxsize=16)
def _candidates(seq_len: int, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    layers, widths = [], []
    for n_layers in range(1, MAX_LAYERS + 1):
        lo, hi = max(64, aspect / 2 * n_layers), min(MAX_WIDTH, 2 * aspect * n_layers)
        for d in range(int(np.ceil(lo / 64)) * 64, int(hi) + 1, 64):
            if _valid_width(d):
                layers.append(n_layers)
                widths.append(d)
    layers, widths = np.asarray(layers, np.int64), np.asarray(widths, np.int64)
    m = 72 * layers * widths**2 + 12 * layers * widths * seq_len
    return layers, widths, m.astype(float)


def shape_for_m(m_target: float, seq_len: int, aspect: float = 64.0, tolerance: float = 0.05) -> ModelShape:
    """The shape the rule above picks for a target M (FLOPs per token)."""
    if not m_target > 0:
        raise ValueError(f"target M must be positive, got {m_target}")
    if not aspect > 0:
        raise ValueError(f"aspect ratio must be positive, got {aspect}")
    layers, widths, m = _candidates(int(seq_len), float(aspect))
    m_err = np.abs(np.log(m / m_target))
    aspect_err = np.abs(np.log(widths / layers / aspect))
    close = m_err <= np.log1p(tolerance)
    if close.any():
        idx = np.flatnonzero(close)
        best = idx[np.lexsort((m_err[idx], aspect_err[idx]))[0]]
    else:
        best = int(np.argmin(m_err))
    return ModelShape(int(layers[best]), int(widths[best]))
