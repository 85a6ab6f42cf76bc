"""The Grain input pipeline: token shards -> packed, batched rows for training and eval.

Training (`train_iterator`), per JAX process:

    ArrayRecord documents --shuffle(seed + epoch)--> this process's documents [p::P]
      --repeat forever--> (input, target) pairs per document --concat-then-split--> rows
      --batch(global_batch / P)--> batch dict   [--mp_prefetch(workers)]

Processes read disjoint documents (a slice of each epoch's permutation), so together
they cover every document once per epoch. Epochs are reshuffled: Grain's index shuffle
uses seed + epoch. Packing runs on the infinite stream, so a row may join the end of one
epoch to the start of the next.

The returned iterator is a `grain.DatasetIterator`: its `get_state()` / `set_state()` is
the position in the stream, and `grain.checkpoint.CheckpointSave(it)` /
`grain.checkpoint.CheckpointRestore(it)` store it inside an Orbax checkpoint (one JSON
per process). The state is only valid for the same dataset, seed, seq_len, batch,
process count and worker count.

Eval (`eval_batches`): one deterministic pass in stored order, packed the same way,
global batches cut into contiguous row blocks per process (so every process yields the
same number of batches), the last batch padded with loss_mask 0.
"""

from __future__ import annotations

from typing import Iterator

import grain
import numpy as np

from dsllm.data import packing
from dsllm.data.shards import DatasetError, read_manifest, shard_paths

# Documents are small reads; a few threads keep the packer fed without crowding the host. A
# small buffer matters: grain polls every buffered future per element, and at its default of
# 500 that polling cost more than the packing (1.1 vs 1.6 M tokens/s measured on one core).
_READ_OPTIONS = grain.ReadOptions(num_threads=4, prefetch_buffer_size=32)


def _process_index_and_count(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax  # only when the caller leaves it to us: tools and tests need no JAX runtime

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, process_count={process_count})")
    return process_index, process_count


def _check_shapes(seq_len: int, global_batch: int, process_count: int) -> int:
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    if global_batch < 1 or global_batch % process_count:
        raise ValueError(f"global_batch {global_batch} must be a positive multiple of the number of JAX "
                         f"processes ({process_count}); change train.global_batch")
    return global_batch // process_count


def _copy_out_of_shared_memory(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in batch.items()}


def open_split(path: str, split: str, *, vocab_size: int) -> tuple[grain.MapDataset, dict]:
    """The split's documents as a Grain MapDataset of pairs, and the dataset manifest.

    Checks that the dataset exists, the split has documents, the shards match the
    manifest, and the dataset's tokens fit a model of `vocab_size`.
    """
    manifest = read_manifest(path)
    if manifest["vocab_size"] > vocab_size:
        raise DatasetError(
            f"dataset {manifest['root']} was tokenized with a vocabulary of {manifest['vocab_size']} "
            f"({manifest['tokenizer']}), larger than the model's vocab_size {vocab_size}: set "
            f"model.vocab_size >= {manifest['vocab_size']} or re-tokenize the data")
    for name in ("bos_id", "eos_id"):
        if not 0 <= manifest[name] < vocab_size:
            raise DatasetError(f"the dataset's {name} {manifest[name]} is outside the model vocabulary [0, {vocab_size})")
    paths = shard_paths(manifest, split)
    source = grain.sources.ArrayRecordDataSource(paths)
    expected = manifest["splits"][split]["documents"]
    if len(source) != expected:
        raise DatasetError(f"split {split!r} of {manifest['root']} has {len(source)} records on disk but the "
                           f"manifest lists {expected}; the shards are damaged, re-run prepare")
    pairs = packing.DocumentToPairs(bos_id=manifest["bos_id"], eos_id=manifest["eos_id"], vocab_size=vocab_size)
    return grain.MapDataset.source(source).map(pairs), manifest


def train_dataset(path: str, split: str, *, seq_len: int, global_batch: int, seed: int, vocab_size: int,
                  workers: int = 0, process_index: int | None = None,
                  process_count: int | None = None) -> grain.IterDataset:
    """The infinite training stream of this process's batches, as a Grain IterDataset.

    Each batch is a dict of numpy arrays [global_batch / process_count, seq_len] (see
    packing.BATCH_KEYS). `workers` > 0 packs in that many worker processes (the output
    then depends on the worker count, but stays deterministic for a fixed count).
    """
    process_index, process_count = _process_index_and_count(process_index, process_count)
    rows = _check_shapes(seq_len, global_batch, process_count)
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = read in this process), got {workers}")
    documents, _ = open_split(path, split, vocab_size=vocab_size)
    if len(documents) < process_count:
        raise DatasetError(f"split {split!r} has {len(documents)} documents, fewer than the {process_count} "
                           "JAX processes that must each read some")
    # Shuffle before slicing, so each process takes its share of the same global permutation;
    # repeat last, so every epoch re-enters the shuffle with the next seed.
    documents = documents.shuffle(seed=seed)[process_index::process_count].repeat(None)
    ds = packing.pack_rows(documents.to_iter_dataset(_READ_OPTIONS), seq_len)
    ds = ds.batch(rows, drop_remainder=True).map(packing.to_batch)
    if workers:
        from absl import flags

        # Grain's workers read its absl flags; outside an absl app (tests, notebooks) nothing
        # parsed them, so take their defaults instead of failing in the first next().
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
        # Workers hand batches over in shared memory blocks that live as long as the arrays;
        # copying into ordinary arrays frees each block at once instead of when the caller
        # happens to drop the batch (or never, at interpreter exit).
        ds = ds.map(_copy_out_of_shared_memory)
    return ds


def train_iterator(path: str, split: str, *, seq_len: int, global_batch: int, seed: int, vocab_size: int,
                   workers: int = 0, process_index: int | None = None,
                   process_count: int | None = None) -> grain.DatasetIterator:
    """Iterator over this process's training batches; never ends. Checkpoint it with
    `grain.checkpoint.CheckpointSave(it)` / `CheckpointRestore(it)`; `it.close()` stops workers."""
    return iter(train_dataset(path, split, seq_len=seq_len, global_batch=global_batch, seed=seed,
                              vocab_size=vocab_size, workers=workers, process_index=process_index,
                              process_count=process_count))


def eval_batches(path: str, split: str, *, seq_len: int, global_batch: int, vocab_size: int,
                 max_batches: int | None = None, process_index: int | None = None,
                 process_count: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """One deterministic pass over a split: the same batches on every call.

    Yields at most `max_batches` batches (None: the whole split) of this process's rows,
    [global_batch / process_count, seq_len]. Documents keep their stored order and are
    packed like training rows; each global batch is cut into contiguous blocks of rows,
    one per process, so all processes yield the same number of batches. Rows missing from
    the last global batch are padding (segment_ids 0, loss_mask 0).
    """
    process_index, process_count = _process_index_and_count(process_index, process_count)
    rows = _check_shapes(seq_len, global_batch, process_count)
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be positive or None, got {max_batches}")
    documents, _ = open_split(path, split, vocab_size=vocab_size)  # validate now, not at first next()
    return _eval_generator(documents, seq_len, global_batch, rows, max_batches, process_index)


def _eval_generator(documents, seq_len, global_batch, rows, max_batches, process_index):
    ds = packing.pack_rows(documents.to_iter_dataset(_READ_OPTIONS), seq_len)
    ds = ds.batch(global_batch, drop_remainder=False).map(packing.to_batch)
    for i, batch in enumerate(ds):
        if max_batches is not None and i >= max_batches:
            return
        missing = global_batch - batch["inputs"].shape[0]
        if missing:
            pad = packing.padding_rows(missing, seq_len)
            batch = {k: np.concatenate([v, pad[k]]) for k, v in batch.items()}
        yield {k: v[process_index * rows:(process_index + 1) * rows] for k, v in batch.items()}
