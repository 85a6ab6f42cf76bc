"""The corpus validation split is independent of remixing and keeps copies together."""

from dsllm.data.corpus.remix import unit_hash
from dsllm.data.corpus.tokenize import validation_hash


def test_validation_share_survives_downsampling():
    ids = [f"dump-0/doc-{i}" for i in range(20000)]
    kept = [i for i in ids if unit_hash(0, i) < 0.1]        # remix keeps 10% of a group, seed 0
    share = sum(validation_hash(0, i) < 0.05 for i in kept) / len(kept)
    assert 0.035 < share < 0.065, share                    # about the 5% asked for (unsalted: 50%)


def test_upsampled_copies_land_in_the_same_split():
    for i in range(200):
        doc = f"doc-{i}"
        assert validation_hash(0, f"{doc}#copy1") == validation_hash(0, doc) == validation_hash(0, f"{doc}#copy7")
