"""The Grain pipeline: packing, shuffling, per-process sharding, iterator state, eval."""

import json
import math
import os
import shutil

import grain
import numpy as np
import pytest
from token_fixtures import BOS, EOS, VOCAB, random_documents, write_dataset

from dsllm.data import packing, pipeline
from dsllm.data.shards import DatasetError, encode_document, iter_documents, read_manifest

SEQ = 16


def single(**kw):
    return dict(dict(seq_len=SEQ, vocab_size=VOCAB, process_index=0, process_count=1), **kw)


def check_rows(batch):
    """Row invariants of the batch format; returns nothing, asserts everything."""
    assert set(batch) == set(packing.BATCH_KEYS)
    for k in ("inputs", "targets", "segment_ids", "positions"):
        assert batch[k].dtype == np.int32
    assert batch["loss_mask"].dtype == batch["target_bytes"].dtype == np.float32
    for row in range(batch["inputs"].shape[0]):
        seg, pos = batch["segment_ids"][row], batch["positions"][row]
        real = seg > 0
        n_real = int(real.sum())
        assert real[:n_real].all() and not real[n_real:].any(), "padding only at the end of a row"
        np.testing.assert_array_equal(batch["loss_mask"][row], real.astype(np.float32))
        assert (batch["target_bytes"][row][~real] == 0).all()
        assert (batch["target_bytes"][row][batch["targets"][row] == EOS] == 0).all()
        if n_real:
            assert seg[0] == 1 and set(np.diff(seg[:n_real])) <= {0, 1}, "segments count 1, 2, ..."
        for s in range(1, int(seg.max(initial=0)) + 1):
            where = np.flatnonzero(seg == s)
            np.testing.assert_array_equal(pos[where], np.arange(where.size))
            # inside a segment each target is the next input: the next token of the same document
            np.testing.assert_array_equal(batch["targets"][row][where[:-1]], batch["inputs"][row][where[1:]])


def reconstruct(batches):
    """The documents a stream of batches carries, in order: a list of (tokens, summed target_bytes).

    Asserts that a document cut across rows continues at the start of the next row, and that
    its pieces reassemble to [BOS] + tokens as inputs and tokens + [EOS] as targets.
    """
    docs, inputs, targets, nbytes = [], [], [], 0.0
    for batch in batches:
        check_rows(batch)
        for row in range(batch["inputs"].shape[0]):
            seg = batch["segment_ids"][row]
            for s in range(1, int(seg.max(initial=0)) + 1):
                where = np.flatnonzero(seg == s)
                if inputs:  # a continued document must resume at the very start of a row
                    assert s == 1 and where[0] == 0
                inputs += batch["inputs"][row][where].tolist()
                targets += batch["targets"][row][where].tolist()
                nbytes += float(batch["target_bytes"][row][where].sum())
                if targets[-1] == EOS:
                    assert inputs[0] == BOS and inputs[1:] == targets[:-1]
                    docs.append((targets[:-1], nbytes))
                    inputs, targets, nbytes = [], [], 0.0
                else:  # cut: this piece must fill the row to its end
                    assert where[-1] == seg.size - 1
    return docs


def doc_id(tokens):
    return tuple(tokens[:2])  # conftest makes the first two tokens unique per document


def take(it, n):
    return [next(it) for _ in range(n)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def batches_for_tokens(docs, rows):
    return math.ceil(sum(len(t) + 1 for t, _ in docs) / (SEQ * rows)) + 1


# ----------------------------------------------------------------------------------- packing

@pytest.mark.parametrize("n_bytes,n_tokens", [(0, 3), (2, 5), (10, 5), (17, 4), (123457, 1000)])
def test_spread_bytes_sums_exactly_and_evenly(n_bytes, n_tokens):
    spread = packing.spread_bytes(n_bytes, n_tokens)
    assert spread.dtype == np.float32 and spread.shape == (n_tokens,)
    assert float(spread.sum()) == n_bytes
    assert spread.max() - spread.min() <= 1


def test_eval_pass_carries_every_document_in_order(token_dataset):
    path, docs = token_dataset
    batches = list(pipeline.eval_batches(path, "validation", **single(global_batch=4)))
    got = reconstruct(batches)
    stored = list(iter_documents(read_manifest(path), "validation"))
    assert [t for t, _ in got] == [t.tolist() for t, _ in stored]
    assert [b for _, b in got] == [float(n) for _, n in stored]  # bytes per document, exactly
    assert sorted(map(doc_id, (t for t, _ in got))) == sorted(doc_id(t.tolist()) for t, _ in docs["validation"])


def test_long_document_is_split_into_row_pieces(tmp_path):
    long_doc = (np.arange(50) % 60 + 3).astype(np.int32)
    path = write_dataset(tmp_path / "d", {"train": [(long_doc, 1000)]}, {"train": 1})
    batches = list(pipeline.eval_batches(path, "train", **single(global_batch=2)))
    rows = np.concatenate([b["segment_ids"] for b in batches])
    assert rows.shape[0] == 4  # 51 pairs -> 4 rows of 16, the last one partly padding
    assert (rows[:3] == 1).all() and rows[3].tolist() == [1, 1, 1] + [0] * 13
    positions = np.concatenate([b["positions"] for b in batches])
    np.testing.assert_array_equal(positions[1], np.arange(SEQ))  # each piece restarts at 0
    assert reconstruct(batches) == [(long_doc.tolist(), 1000.0)]


def test_document_to_pairs_rejects_token_outside_model_vocab():
    to_pairs = packing.DocumentToPairs(bos_id=BOS, eos_id=EOS, vocab_size=10)
    pairs = to_pairs.map(encode_document(np.array([3, 9]), 7))
    np.testing.assert_array_equal(pairs["inputs"], [BOS, 3, 9])
    np.testing.assert_array_equal(pairs["targets"], [3, 9, EOS])
    np.testing.assert_array_equal(pairs["target_bytes"], [4, 3, 0])
    with pytest.raises(DatasetError, match="outside the model vocabulary"):
        to_pairs.map(encode_document(np.array([3, 10]), 7))


# ------------------------------------------------------------------------ shuffle, epochs

def test_first_epoch_holds_each_document_exactly_once_and_epochs_differ(token_dataset):
    path, docs = token_dataset
    train = docs["train"]
    it = pipeline.train_iterator(path, "train", **single(global_batch=2, seed=5))
    got = reconstruct(take(it, 2 * batches_for_tokens(train, 2)))
    assert len(got) >= 2 * len(train)
    epoch0, epoch1 = got[:len(train)], got[len(train):2 * len(train)]
    expected = sorted((t.tolist(), float(b)) for t, b in train)
    assert sorted(epoch0) == expected  # no token lost or duplicated
    assert sorted(epoch1) == expected
    assert [doc_id(t) for t, _ in epoch0] != [doc_id(t) for t, _ in epoch1]  # reshuffled
    assert [doc_id(t) for t, _ in epoch0] != [doc_id(t.tolist()) for t, _ in train]  # shuffled at all


def test_same_seed_same_batches_other_seed_other_batches(token_dataset):
    path, _ = token_dataset
    a = take(pipeline.train_iterator(path, "train", **single(global_batch=4, seed=1)), 6)
    b = take(pipeline.train_iterator(path, "train", **single(global_batch=4, seed=1)), 6)
    c = take(pipeline.train_iterator(path, "train", **single(global_batch=4, seed=2)), 6)
    assert_same_batches(a, b)
    assert not np.array_equal(a[0]["inputs"], c[0]["inputs"])


# ---------------------------------------------------------------------- process sharding

@pytest.mark.parametrize("process_count", [2, 3])
def test_processes_read_disjoint_documents_that_cover_the_split(token_dataset, process_count):
    path, docs = token_dataset
    train = docs["train"]
    seen = []
    for p in range(process_count):
        it = pipeline.train_iterator(path, "train", seq_len=SEQ, global_batch=2 * process_count, seed=3,
                                     vocab_size=VOCAB, process_index=p, process_count=process_count)
        batches = take(it, batches_for_tokens(train, 2 * process_count) + 2)
        assert batches[0]["inputs"].shape == (2, SEQ)
        mine = len(range(p, len(train), process_count))  # this process's share of one epoch
        seen.append({doc_id(t) for t, _ in reconstruct(batches)[:mine]})
        assert len(seen[-1]) == mine
    assert sum(len(s) for s in seen) == len(train)
    assert set().union(*seen) == {doc_id(t.tolist()) for t, _ in train}


# ---------------------------------------------------------------------- iterator state

def test_state_survives_json_at_every_position(token_dataset):
    path, _ = token_dataset
    kw = single(global_batch=1, seed=0)
    it = pipeline.train_iterator(path, "train", **kw)
    for _ in range(40):
        state = json.loads(json.dumps(it.get_state()))  # what the Orbax handler stores
        restored = pipeline.train_iterator(path, "train", **kw)
        restored.set_state(state)
        assert_same_batches(take(it, 1), take(restored, 1))


def test_state_restores_when_rows_end_exactly_at_document_ends(tmp_path):
    # Every document fills one row exactly, so every saved state has no remainder: the case
    # grain 0.2.18 restores wrongly after a JSON round trip (see packing._JsonSafeState).
    docs = [(np.full(SEQ - 1, 3 + i), 20) for i in range(10)]
    path = write_dataset(tmp_path / "d", {"train": docs}, {"train": 2})
    kw = single(global_batch=1, seed=0)
    it = pipeline.train_iterator(path, "train", **kw)
    take(it, 3)
    restored = pipeline.train_iterator(path, "train", **kw)
    restored.set_state(json.loads(json.dumps(it.get_state())))
    assert_same_batches(take(it, 12), take(restored, 12))


def test_orbax_checkpoint_round_trip_continues_with_the_same_batches(token_dataset, tmp_path):
    import orbax.checkpoint as ocp

    path, _ = token_dataset
    kw = single(global_batch=4, seed=7)
    it = pipeline.train_iterator(path, "train", **kw)
    take(it, 5)
    params = {"w": np.arange(4.0)}
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.save(5, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                             data_iter=grain.checkpoint.CheckpointSave(it)))
        mngr.wait_until_finished()
    expected = take(it, 4)
    assert os.path.exists(tmp_path / "ckpt" / "5" / "data_iter" / "process_0-of-1.json")

    fresh = pipeline.train_iterator(path, "train", **kw)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        restored = mngr.restore(mngr.latest_step(), args=ocp.args.Composite(
            params=ocp.args.StandardRestore(params), data_iter=grain.checkpoint.CheckpointRestore(fresh)))
    np.testing.assert_array_equal(restored["params"]["w"], params["w"])
    assert_same_batches(expected, take(fresh, 4))


def test_worker_processes_are_deterministic_and_checkpointable(token_dataset):
    path, _ = token_dataset
    kw = single(global_batch=2, seed=0, workers=2)
    it = pipeline.train_iterator(path, "train", **kw)
    try:
        take(it, 3)
        state = json.loads(json.dumps(it.get_state()))
        expected = take(it, 3)
    finally:
        it.close()
    for b in expected:
        check_rows(b)
        assert type(b["inputs"]) is np.ndarray  # copied out of the workers' shared memory
    # A fresh pipeline (new worker processes) restored to the state yields the same batches.
    restored = pipeline.train_iterator(path, "train", **kw)
    try:
        restored.set_state(state)
        assert_same_batches(expected, take(restored, 3))
    finally:
        restored.close()


# -------------------------------------------------------------------------------- eval

def test_eval_batches_repeat_and_pad_the_last_batch(token_dataset):
    path, _ = token_dataset
    a = list(pipeline.eval_batches(path, "validation", **single(global_batch=4)))
    b = list(pipeline.eval_batches(path, "validation", **single(global_batch=4)))
    assert_same_batches(a, b)
    assert all(x["inputs"].shape == (4, SEQ) for x in a)
    n_rows = sum(int((x["segment_ids"].max(axis=1) > 0).sum()) for x in a)
    assert n_rows % 4 != 0  # this split does leave a partial last batch
    assert a[-1]["loss_mask"][n_rows % 4:].sum() == 0
    assert len(list(pipeline.eval_batches(path, "validation", **single(global_batch=4, max_batches=2)))) == 2


def test_eval_rows_split_across_processes(token_dataset):
    path, _ = token_dataset
    whole = list(pipeline.eval_batches(path, "validation", **single(global_batch=4)))
    parts = [list(pipeline.eval_batches(path, "validation", seq_len=SEQ, global_batch=4, vocab_size=VOCAB,
                                        process_index=p, process_count=2)) for p in range(2)]
    assert len(parts[0]) == len(parts[1]) == len(whole)
    for w, p0, p1 in zip(whole, *parts):
        for k in w:
            np.testing.assert_array_equal(w[k], np.concatenate([p0[k], p1[k]]))


# ------------------------------------------------------------------------------ errors

def test_missing_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no token dataset at .*dsllm.data.prepare"):
        pipeline.train_iterator(str(tmp_path / "nope"), "train", **single(global_batch=2, seed=0))


def test_missing_and_empty_split(tmp_path):
    path = write_dataset(tmp_path / "d", {"train": random_documents(5, 0), "validation": []},
                         {"train": 1, "validation": 1})
    with pytest.raises(DatasetError, match="no split 'test'"):
        pipeline.train_iterator(path, "test", **single(global_batch=2, seed=0))
    with pytest.raises(DatasetError, match="'validation' .* holds no documents"):
        pipeline.eval_batches(path, "validation", **single(global_batch=2))


def test_global_batch_must_divide_among_processes(token_dataset):
    path, _ = token_dataset
    with pytest.raises(ValueError, match="global_batch 6 must be a positive multiple of .* processes \\(4\\)"):
        pipeline.train_iterator(path, "train", seq_len=SEQ, global_batch=6, seed=0, vocab_size=VOCAB,
                                process_index=0, process_count=4)


def test_model_vocab_smaller_than_dataset_vocab(token_dataset):
    path, _ = token_dataset
    with pytest.raises(DatasetError, match="vocabulary of 64 .* larger than the model's vocab_size 32"):
        pipeline.train_iterator(path, "train", **single(global_batch=2, seed=0, vocab_size=32))
    # a larger model vocabulary (padded embedding) is fine
    next(pipeline.train_iterator(path, "train", **single(global_batch=2, seed=0, vocab_size=128)))


def test_damaged_datasets(token_dataset, tmp_path):
    path, _ = token_dataset
    copy = shutil.copytree(path, tmp_path / "copy")
    manifest = read_manifest(str(copy))
    os.remove(os.path.join(copy, manifest["splits"]["train"]["shards"][0]["file"]))
    with pytest.raises(DatasetError, match="listed in the manifest is missing"):
        pipeline.train_iterator(str(copy), "train", **single(global_batch=2, seed=0))

    copy2 = shutil.copytree(path, tmp_path / "copy2")
    with open(os.path.join(copy2, "manifest.json")) as f:
        m = json.load(f)
    m["splits"]["train"]["documents"] += 1
    with open(os.path.join(copy2, "manifest.json"), "w") as f:
        json.dump(m, f)
    with pytest.raises(DatasetError, match="records on disk but the manifest lists"):
        pipeline.train_iterator(str(copy2), "train", **single(global_batch=2, seed=0))
