"""The tokenize stage's merge of per-task parts survives a crash at any point: re-running it
finishes the same dataset, and a stale plan (parts re-tokenized after a crash) is refused."""
import os

import numpy as np
import pytest

from dsllm.data import shards as shard_format
from dsllm.data.corpus import tokenize as tok_stage


def write_parts(parts_dir, n_parts=3, docs_per_part=7, seed=0):
    rng = np.random.default_rng(seed)
    for p in range(n_parts):
        with shard_format.ShardWriter(os.path.join(parts_dir, f"part-{p:02d}"), tokenizer="test", vocab_size=100,
                                      bos_id=1, eos_id=2, shards={"train": 2, "validation": 1}) as w:
            for d in range(docs_per_part):
                split = "validation" if d % 4 == 0 else "train"
                w.add(split, rng.integers(3, 100, int(rng.integers(1, 20))), n_bytes=5)


def documents(out_dir):
    m = shard_format.read_manifest(out_dir)
    return {s: [(t.tolist(), b) for t, b in shard_format.iter_documents(m, s)] for s in m["splits"]}


@pytest.mark.parametrize("crash_after_moves", [0, 1, 4, "manifest", "rmtree"])
def test_merge_resumes_after_a_crash(tmp_path, monkeypatch, crash_after_moves):
    write_parts(tmp_path / "ref_parts")
    reference = tok_stage.merge_parts(str(tmp_path / "ref_parts"), str(tmp_path / "ref_out"))
    write_parts(tmp_path / "parts")
    parts, out = str(tmp_path / "parts"), str(tmp_path / "out")

    real_replace, real_rmtree, real_write = os.replace, tok_stage.shutil.rmtree, shard_format.write_manifest
    moves = []

    def crashing_replace(src, dst):
        if src.endswith(".array_record") and isinstance(crash_after_moves, int):
            if len(moves) == crash_after_moves:
                raise OSError("simulated crash during the moves")
            moves.append(src)
        return real_replace(src, dst)

    def crashing_write(*a, **kw):
        if crash_after_moves == "manifest":
            raise OSError("simulated crash before the manifest")
        return real_write(*a, **kw)

    def crashing_rmtree(path, **kw):
        # remove one part, then die: the merge must not re-plan from the parts that are left
        real_rmtree(os.path.join(path, "part-00"))
        raise OSError("simulated crash while removing the parts")

    monkeypatch.setattr(tok_stage.os, "replace", crashing_replace)
    monkeypatch.setattr(shard_format, "write_manifest", crashing_write)
    if crash_after_moves == "rmtree":
        monkeypatch.setattr(tok_stage.shutil, "rmtree", crashing_rmtree)
    with pytest.raises(OSError, match="simulated crash"):
        tok_stage.merge_parts(parts, out)
    monkeypatch.undo()

    assert not os.path.exists(os.path.join(out, shard_format.MANIFEST)) or crash_after_moves == "rmtree"
    manifest = tok_stage.merge_parts(parts, out)   # the re-run finishes the merge
    assert not os.path.exists(parts) and not os.path.exists(os.path.join(out, tok_stage.MERGE_PLAN))
    assert {s: v["documents"] for s, v in manifest["splits"].items()} == \
        {s: v["documents"] for s, v in reference["splits"].items()}
    assert documents(out) == documents(str(tmp_path / "ref_out"))


def test_stale_plan_is_refused(tmp_path, monkeypatch):
    parts, out = str(tmp_path / "parts"), str(tmp_path / "out")
    write_parts(parts)
    real_replace = os.replace

    def crash(src, dst):
        if src.endswith(".array_record"):
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(tok_stage.os, "replace", crash)
    with pytest.raises(OSError):
        tok_stage.merge_parts(parts, out)
    monkeypatch.undo()
    tok_stage.shutil.rmtree(parts)
    write_parts(parts, docs_per_part=9, seed=1)   # the tokenize stage ran again, other shards
    with pytest.raises(shard_format.DatasetError, match="merge plan for other parts"):
        tok_stage.merge_parts(parts, out)
