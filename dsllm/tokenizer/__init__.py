"""dsllm tokenizers: a DeepSeek-style byte-level BPE trained with SentencePiece (default) or
Hugging Face `tokenizers`, and released `tokenizer.json` files, behind one interface.

    from dsllm.tokenizer import load_tokenizer, train_tokenizer
    path = train_tokenizer(["corpus.txt"], vocab_size=8192, out_dir="tok")   # -> "tok"
    tok = load_tokenizer(path)          # a directory, a .model or a tokenizer.json
    ids = tok.encode("Hello 世界 123")  # no BOS/EOS
    text = tok.decode(ids)

Vocabulary sizes: `vocab_size` is the number of ids of the trained tokenizer, its 15 special
tokens included, so every id it emits is below `vocab_size`. `pad_to` (>= vocab_size) makes
`tok.vocab_size` the padded model vocabulary (ids above the tokenizer's are never emitted).
DeepSeek LLM's layout, 100,000 learned tokens + 15 specials padded to 102,400, is
`train_tokenizer(files, vocab_size=100_015, out_dir=..., pad_to=102_400)`, also spelt
`learned_tokens=100_000` or `--preset=deepseek` on the command line. See docs/tokenizer.md.
"""

from __future__ import annotations

import os
import time

from dsllm.tokenizer.base import Tokenizer, TokenizerError, read_meta, write_meta
from dsllm.tokenizer.inputs import TokenizerInputError, expand_inputs, iter_files
from dsllm.tokenizer.specials import BOS, EOS, PAD, SPECIAL_TOKENS

__all__ = ["load_tokenizer", "train_tokenizer", "Tokenizer", "TokenizerError", "TokenizerInputError",
           "SPECIAL_TOKENS", "BOS", "EOS", "PAD", "DEEPSEEK_LEARNED", "DEEPSEEK_MODEL_VOCAB"]

DEEPSEEK_LEARNED = 100_000
DEEPSEEK_MODEL_VOCAB = 102_400


def load_tokenizer(path: str, **kw) -> Tokenizer:
    """A SentencePiece `.model`, a `tokenizer.json`, or a directory holding one of them."""
    from dsllm.tokenizer.hf_backend import JSON_FILE, HFTokenizer
    from dsllm.tokenizer.spm_backend import MODEL_FILE, SentencePieceTokenizer

    if not os.path.exists(path):
        raise TokenizerError(f"no tokenizer at {path}: give a directory written by "
                             "`python -m dsllm.tokenizer train`, a SentencePiece .model or a tokenizer.json")
    if os.path.isdir(path):
        meta = read_meta(path)
        candidates = [MODEL_FILE, JSON_FILE] if meta.get("backend", "sentencepiece") == "sentencepiece" \
            else [JSON_FILE, MODEL_FILE]
        for c in candidates:
            if os.path.exists(os.path.join(path, c)):
                return load_tokenizer(os.path.join(path, c), **kw)
        models = [f for f in os.listdir(path) if f.endswith(".model")]
        if len(models) == 1:
            return load_tokenizer(os.path.join(path, models[0]), **kw)
        raise TokenizerError(f"{path} holds no {MODEL_FILE} or {JSON_FILE}")
    if path.endswith(".json"):
        return HFTokenizer(path, **kw)
    return SentencePieceTokenizer(path, **kw)


def train_tokenizer(input_files: list[str], vocab_size: int | None, out_dir: str, *,
                    backend: str = "sentencepiece", learned_tokens: int | None = None,
                    pad_to: int | None = None, text_field: str = "text", name: str | None = None,
                    **options) -> str:
    """Trains a DeepSeek-style byte-level BPE on `input_files` (text, JSONL or Parquet; globs and
    directories accepted) and writes it to `out_dir`; returns `out_dir` (what load_tokenizer takes).

    vocab_size: ids of the tokenizer, 15 specials included; or give `learned_tokens` instead
      (vocab_size = learned_tokens + 15).
    pad_to: model vocabulary size recorded as `tok.vocab_size` (default: vocab_size).
    backend: "sentencepiece" (default) or "hf" (Hugging Face tokenizers, DeepSeek's exact
      pre-tokenizer).
    options: passed to the backend trainer (sentencepiece: pretokenizer ("native": SentencePiece's
      own script/digit/whitespace splitting, or "deepseek": DeepSeek's regex splits first),
      character_coverage, max_piece_length, max_sentence_bytes, input_sentence_size, num_threads,
      extra; hf: min_frequency, max_token_length).
    """
    n_special = len(SPECIAL_TOKENS)
    if learned_tokens is not None:
        if vocab_size is not None and vocab_size != learned_tokens + n_special:
            raise TokenizerError(f"vocab_size {vocab_size} != learned_tokens {learned_tokens} + {n_special} specials; "
                                 "give one of them")
        vocab_size = learned_tokens + n_special
    if not vocab_size:
        raise TokenizerError("give vocab_size (or learned_tokens)")
    vocab_size = int(vocab_size)
    pad_to = int(pad_to or vocab_size)
    if pad_to < vocab_size:
        raise TokenizerError(f"pad_to {pad_to} is below vocab_size {vocab_size}")
    files = expand_inputs(input_files)
    docs = iter_files(files, text_field=text_field)
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    if backend in ("sentencepiece", "spm"):
        from dsllm.tokenizer.spm_backend import MODEL_FILE, train_sentencepiece

        stats = train_sentencepiece(docs, out_dir, vocab_size=vocab_size, **options)
        model_file, backend = MODEL_FILE, "sentencepiece"
    elif backend in ("hf", "tokenizers", "huggingface"):
        from dsllm.tokenizer.hf_backend import JSON_FILE, train_hf

        stats = train_hf(docs, out_dir, vocab_size=vocab_size, **options)
        model_file, backend = JSON_FILE, "hf"
    else:
        raise TokenizerError(f"unknown tokenizer backend {backend!r}: use 'sentencepiece' or 'hf'")
    name = name or f"{'spm' if backend == 'sentencepiece' else 'hf'}:{os.path.abspath(out_dir)}"
    write_meta(out_dir, dict(
        name=name, backend=backend, model_file=model_file, vocab_size=pad_to,
        pretokenizer=options.get("pretokenizer", "native") if backend == "sentencepiece" else "deepseek",
        tokenizer_vocab_size=vocab_size, learned_tokens=vocab_size - n_special,
        special_tokens=list(SPECIAL_TOKENS), inputs=[os.path.abspath(f) for f in files],
        options={k: v for k, v in options.items() if isinstance(v, (int, float, str, bool, type(None)))},
        stats=dict(stats, wall_seconds=round(time.time() - t0, 3))))
    return out_dir
