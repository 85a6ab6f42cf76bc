"""Tokenize raw documents into token shards (dsllm/data/shards.py) for training.

    python -m dsllm.data.prepare --input='data/*.jsonl' --tokenizer=runs/tok --out=runs/tokens \\
        [--text_field=text] [--validation_fraction=0.01] [--train_shards=8] [--validation_shards=1]

Inputs are files, globs or directories (comma-separated), read by dsllm/data/documents.py:
JSONL files (.jsonl, .json, .ndjson, optionally .gz) hold one document per line, its text in
--text_field; Parquet files (.parquet) a --text_field column; any other file is plain UTF-8 text,
one document per file, or one per blank-line-separated paragraph with --split_on_blank_lines.

A document goes to the validation split when a hash of its text (salted with --seed) falls
below --validation_fraction: the choice does not depend on file order, and exact duplicates
always land in the same split. Nothing is dropped silently: malformed lines stop the run with
their file and line (or, with --skip_bad_lines, are counted), and empty documents are counted.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys
from typing import Iterator, Sequence

from absl import app, flags, logging

from dsllm.data.documents import FORMATS, InputError, expand_inputs, read_documents
from dsllm.data.shards import DatasetError, ShardWriter

_BATCH = 256  # documents per encode_batch call


PrepareError = InputError  # the inputs cannot be read as asked, or the options are invalid


def is_validation(text: str, fraction: float, seed: int = 0) -> bool:
    """Whether a document belongs to the validation split: a deterministic hash of its text."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") < fraction * 2**64


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepare(inputs: Sequence[str], tokenizer, out_dir: str, *, text_field: str = "text",
            input_format: str = "auto", split_on_blank_lines: bool = False, skip_bad_lines: bool = False,
            validation_fraction: float = 0.01, train_shards: int = 8, validation_shards: int = 1,
            seed: int = 0) -> dict:
    """Tokenizes `inputs` (files or globs) into a token dataset at `out_dir`; returns its stats.

    `tokenizer` is a path for dsllm.tokenizer.load_tokenizer, or an object with its interface.
    The dataset appears complete (manifest.json) only when every document is written.
    """
    if not 0 <= validation_fraction < 1:
        raise PrepareError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if train_shards < 1 or validation_shards < 1:
        raise PrepareError(f"shard counts must be >= 1, got train_shards={train_shards}, "
                           f"validation_shards={validation_shards}")
    files = expand_inputs(inputs)
    if isinstance(tokenizer, str):
        from dsllm.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    shards = {"train": train_shards}
    if validation_fraction > 0:
        shards["validation"] = validation_shards

    counts = {"files": len(files), "bad_lines": 0, "empty_documents": 0}
    texts = read_documents(files, input_format=input_format, text_field=text_field,
                           split_on_blank_lines=split_on_blank_lines, skip_bad_lines=skip_bad_lines,
                           counts=counts)
    try:
        with ShardWriter(out_dir, tokenizer=tokenizer.name, vocab_size=tokenizer.vocab_size,
                         bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, shards=shards,
                         extra={"source_files": len(files)}) as writer:
            for batch in _batches(texts, _BATCH):
                for text, tokens in zip(batch, tokenizer.encode_batch(batch)):
                    if not text.strip() or not len(tokens):
                        counts["empty_documents"] += 1
                        continue
                    split = "validation" if is_validation(text, validation_fraction, seed) else "train"
                    writer.add(split, tokens, len(text.encode("utf-8")))
            manifest = writer.close()
    except BaseException:
        _remove_partial_shards(out_dir, shards)
        raise

    stats = dict(counts, out=os.path.abspath(out_dir), tokenizer=tokenizer.name, vocab_size=tokenizer.vocab_size,
                 splits={name: {k: s[k] for k in ("documents", "tokens", "bytes")}
                         for name, s in manifest["splits"].items()})
    if manifest["splits"]["train"]["documents"] == 0:
        logging.warning("the train split is empty: every document went to validation or was empty")
    if validation_fraction > 0 and manifest["splits"]["validation"]["documents"] == 0:
        logging.warning("the validation split is empty (too few documents for validation_fraction=%g); "
                        "evaluation on it will fail", validation_fraction)
    return stats


def _remove_partial_shards(out_dir: str, shards: dict[str, int]):
    """After a failure: the unfinished shards (*.tmp) of this run are of no use to anyone."""
    for split in shards:
        for path in glob.glob(os.path.join(out_dir, f"{split}-*-of-*.array_record.tmp")):
            os.remove(path)


def format_stats(stats: dict) -> str:
    lines = [f"wrote {stats['out']} (tokenizer {stats['tokenizer']}, vocab {stats['vocab_size']})",
             f"  input files: {stats['files']}, empty documents skipped: {stats['empty_documents']}, "
             f"bad lines skipped: {stats['bad_lines']}"]
    for name, s in stats["splits"].items():
        ratio = s["bytes"] / s["tokens"] if s["tokens"] else 0.0
        lines.append(f"  {name:<10} {s['documents']:>10,} documents {s['tokens']:>14,} tokens "
                     f"{s['bytes']:>15,} bytes ({ratio:.2f} bytes/token)")
    return "\n".join(lines)


def _define_flags():
    """Flags exist only when this module is the program, so importing prepare() elsewhere
    (the demo) cannot clash with that program's own flags."""
    flags.DEFINE_list("input", None, "Input files, globs or directories, comma-separated.", required=True)
    flags.DEFINE_string("tokenizer", None, "Tokenizer path (for dsllm.tokenizer.load_tokenizer).", required=True)
    flags.DEFINE_string("out", None, "Output dataset directory (must not hold a dataset yet).", required=True)
    flags.DEFINE_string("text_field", "text", "JSONL field holding the document text.")
    flags.DEFINE_enum("format", "auto", list(FORMATS),
                      "Input format; auto: .jsonl/.json/.ndjson(.gz) are JSONL, .parquet Parquet, anything else text.")
    flags.DEFINE_bool("split_on_blank_lines", False,
                      "Text files: one document per blank-line-separated paragraph instead of one per file.")
    flags.DEFINE_bool("skip_bad_lines", False, "Count and skip malformed records (JSONL lines, Parquet rows) instead of stopping.")
    flags.DEFINE_float("validation_fraction", 0.01, "Fraction of documents for the validation split.")
    flags.DEFINE_integer("train_shards", 8, "Number of train shard files.")
    flags.DEFINE_integer("validation_shards", 1, "Number of validation shard files.")
    flags.DEFINE_integer("seed", 0, "Salt of the hash that picks validation documents.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dsllm.tokenizer import TokenizerError

    f = flags.FLAGS
    try:
        stats = prepare(f.input, f.tokenizer, f.out, text_field=f.text_field, input_format=f.format,
                        split_on_blank_lines=f.split_on_blank_lines, skip_bad_lines=f.skip_bad_lines,
                        validation_fraction=f.validation_fraction, train_shards=f.train_shards,
                        validation_shards=f.validation_shards, seed=f.seed)
    except (InputError, DatasetError, TokenizerError) as e:
        sys.exit(f"prepare: {e}")  # a user error: its message, not a traceback
    print(format_stats(stats))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
