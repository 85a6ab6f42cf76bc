"""Helpers for the data tests: small token datasets written with the real ShardWriter.

A plain module (not conftest.py) so tests can import it by a name no other conftest shares.
"""

import numpy as np

from dsllm.data.shards import ShardWriter

VOCAB = 64
BOS, EOS = 1, 2


def random_documents(n_docs: int, seed: int, max_len: int = 40) -> list[tuple[np.ndarray, int]]:
    """(tokens, n_bytes) documents of varied lengths; tokens avoid BOS/EOS so tests can find them.

    Each document starts with a distinct id pair (3 + i // 61, 3 + i % 61) so that documents
    are told apart even when their random tails collide.
    """
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n_docs):
        n = int(rng.integers(1, max_len + 1))
        body = rng.integers(3, VOCAB, size=n)
        tokens = np.concatenate([[3 + i // 61, 3 + i % 61], body]).astype(np.int32)
        docs.append((tokens, int(rng.integers(0, 5 * tokens.size))))
    return docs


def write_dataset(path, splits: dict[str, list], shards: dict[str, int] | None = None) -> str:
    shards = shards or {name: 3 for name in splits}
    with ShardWriter(str(path), tokenizer="test", vocab_size=VOCAB, bos_id=BOS, eos_id=EOS, shards=shards) as w:
        for name, docs in splits.items():
            for tokens, n_bytes in docs:
                w.add(name, tokens, n_bytes)
    return str(path)
