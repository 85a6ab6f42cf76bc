import json
import os
import subprocess
import sys

import pytest

from dsllm.tokenizer import (SPECIAL_TOKENS, TokenizerError, load_tokenizer, train_tokenizer)


def test_attributes(tok):
    assert tok.vocab_size == 2048
    assert isinstance(tok.name, str) and tok.name
    ids = {tok.bos_id, tok.eos_id, tok.pad_id}
    assert len(ids) == 3 and all(0 <= i < tok.vocab_size for i in ids)
    assert set(SPECIAL_TOKENS) <= set(tok.special_tokens)
    assert tok.special_tokens[SPECIAL_TOKENS[1]] == tok.bos_id


def test_encode_has_no_bos_eos_and_ids_in_range(tok):
    ids = tok.encode("Hello world, 你好 123")
    assert ids and tok.bos_id not in ids and tok.eos_id not in ids
    assert max(ids) < tok.vocab_size and min(ids) >= 0
    assert tok.encode("") == []


def test_encode_batch_matches_encode(tok):
    texts = ["Hello world", "", "a\u2581b c", "数字 123", "x" * 1000]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]


def test_special_strings_in_text_are_not_special(tok):
    text = f"hi {SPECIAL_TOKENS[2]} there{SPECIAL_TOKENS[1]}"
    ids = tok.encode(text)
    assert not set(ids) & set(tok.special_tokens.values())
    assert tok.decode(ids) == text


def test_decode_renders_special_ids(tok):
    ids = [tok.bos_id] + tok.encode("Hi") + [tok.eos_id]
    assert tok.decode(ids) == SPECIAL_TOKENS[1] + "Hi" + SPECIAL_TOKENS[2]
    with pytest.raises(TokenizerError):
        tok.decode([tok.vocab_size])


def test_load_by_file_and_dir(spm_dir, hf_dir):
    a = load_tokenizer(spm_dir)
    b = load_tokenizer(os.path.join(spm_dir, "tokenizer.model"))
    assert a.encode("Hello there") == b.encode("Hello there")
    c = load_tokenizer(hf_dir)
    d = load_tokenizer(os.path.join(hf_dir, "tokenizer.json"))
    assert c.encode("Hello there") == d.encode("Hello there")
    assert c.bos_id == 2048 - 15 + 1  # specials appended after the learned tokens, DeepSeek's layout


def test_small_vocab_and_padding(tmp_path, corpus_file):
    out = train_tokenizer([corpus_file], None, str(tmp_path / "t"), learned_tokens=1000, pad_to=1152)
    tok = load_tokenizer(out)
    assert tok.vocab_size == 1152
    assert tok.num_pieces == 1015
    ids = tok.encode(open(corpus_file, encoding="utf-8").read()[:5000])
    assert max(ids) < 1015
    assert tok.decode(ids + [1100]) == tok.decode(ids)  # padding ids carry no text
    meta = json.load(open(os.path.join(out, "dsllm_tokenizer.json")))
    assert meta["learned_tokens"] == 1000 and meta["vocab_size"] == 1152


def test_errors(tmp_path, corpus_file):
    with pytest.raises(TokenizerError):
        load_tokenizer(str(tmp_path / "missing"))
    with pytest.raises(TokenizerError):
        train_tokenizer([corpus_file], 100, str(tmp_path / "x"))
    with pytest.raises(ValueError):
        train_tokenizer([str(tmp_path / "nope.txt")], 4096, str(tmp_path / "y"))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(TokenizerError):
        load_tokenizer(str(bad))


def test_cli_train_encode(tmp_path, corpus_file):
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "dsllm.tokenizer", "train", f"--input={corpus_file}",
                        "--vocab_size=1024", f"--out={out}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["vocab_size"] == 1024
    r = subprocess.run([sys.executable, "-m", "dsllm.tokenizer", "encode", f"--tokenizer={out}", "--text=ab 12"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["ids"]) >= 4
    r = subprocess.run([sys.executable, "-m", "dsllm.tokenizer", "train", "--input=/nonexistent.txt",
                        "--vocab_size=1024", f"--out={tmp_path / 'z'}"], capture_output=True, text=True)
    assert r.returncode == 2 and "does not exist" in r.stderr
