"""Lines longer than SentencePiece's sentence limit are split, never silently dropped."""

import json
import os

from dsllm.tokenizer import load_tokenizer, train_tokenizer
from dsllm.tokenizer.spm_backend import split_long_line


def test_split_long_line_keeps_everything():
    stats = dict(long_lines=0, pieces_from_long_lines=0, forced_splits=0)
    line = "alpha beta  gamma " * 500 + "你好" * 3000
    parts = list(split_long_line(line, 1000, stats))
    assert "".join(parts) == line
    assert all(len(p.encode()) <= 1000 for p in parts)
    assert stats["long_lines"] == 1 and stats["forced_splits"] > 0
    # cuts land before a run of spaces, never inside one
    assert all(not p.startswith(" ") or not parts[k - 1].endswith(" ") for k, p in enumerate(parts) if k)


def test_long_line_is_used_for_training(tmp_path):
    # The word 'zqxjvw' only occurs inside one 300 kB line (far above SentencePiece's 4192-byte
    # default, and above our 64 kB limit): if that line were dropped it could not become a piece.
    normal = "\n".join(f"line {i} of ordinary text with words" for i in range(2000))
    long_line = " ".join(["zqxjvw"] * 40000)
    p = tmp_path / "c.txt"
    p.write_text(normal + "\n" + long_line + "\n", encoding="utf-8")
    out = train_tokenizer([str(p)], 400, str(tmp_path / "t"))
    tok = load_tokenizer(out)
    assert len(tok.encode(" zqxjvw")) == 1
    stats = json.load(open(os.path.join(out, "dsllm_tokenizer.json")))["stats"]
    assert stats["long_lines"] == 1 and stats["pieces_from_long_lines"] >= 5
