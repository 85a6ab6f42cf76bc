"""Greedy continuation of a prompt, for the demo and quick looks at a checkpoint.

Deliberately simple: the whole window is re-run for each new token (no KV cache), which is
fine for the short samples printed after training; serving is not this module's job.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dsllm.data.shards import read_manifest


def tokenizer_for(cfg):
    from dsllm.tokenizer import load_tokenizer

    path = cfg.data.tokenizer
    if not path:
        name = read_manifest(cfg.data.path)["tokenizer"]
        path = name.split(":", 1)[1] if name.split(":", 1)[0] in ("spm", "hf") else name
    return load_tokenizer(path)


def greedy_tokens(graphdef, params, prompt_ids, n_new: int, window: int, bos_id: int) -> list[int]:
    ids = [bos_id] + list(prompt_ids)
    if len(ids) + n_new > window:
        raise ValueError(f"prompt ({len(ids)} tokens) + {n_new} new tokens exceed the window of {window}")
    length = len(ids) + n_new

    @jax.jit
    def next_token(params, tokens_1T, cur):
        model = nnx.merge(graphdef, params)
        T = tokens_1T.shape[1]
        logits = model(tokens_1T, jnp.ones((1, T), jnp.int32), jnp.arange(T, dtype=jnp.int32)[None])
        return jnp.argmax(logits[0, cur - 1])

    buf = np.zeros((1, length), np.int32)
    buf[0, :len(ids)] = ids
    for cur in range(len(ids), length):
        buf[0, cur] = int(next_token(params, jnp.asarray(buf), cur))
    return buf[0, len(ids):].tolist()


def greedy_sample(cfg, setup, params, prompt: str, n_new: int) -> str:
    tok = tokenizer_for(cfg)
    out = greedy_tokens(setup.spec.graphdef, params, tok.encode(prompt), n_new, cfg.train.seq_len, tok.bos_id)
    return tok.decode(out)
