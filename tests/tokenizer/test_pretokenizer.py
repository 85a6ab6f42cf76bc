"""The Hugging Face backend's pre-tokenizer splits text exactly as DeepSeek LLM's (the splits
behind llama.cpp's deepseek-llm test vectors, shared/reference/deepseek_llm_paper.md section 5)."""

import pytest

from dsllm.tokenizer.specials import deepseek_pre_tokenizer


def pretokens(text):
    from tokenizers import decoders

    dec = decoders.ByteLevel()
    return [dec.decode([t]) for t, _ in deepseek_pre_tokenizer().pre_tokenize_str(text)]


@pytest.mark.parametrize("text,expected", [
    ("    Hello\n    Hello", ["   ", " Hello", "\n", "   ", " Hello"]),   # ids 300 37727 185 300 37727
    ("w048 7tuijk dsdfhu", ["w", "0", "4", "8", " ", "7", "tuijk", " dsdfhu"]),  # a space never joins a digit
    ("Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
     ["Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ?", "我想在", "apple", "工作",
      "1", "3", "1", "4", "1", "5", "1", "天", "～"]),
    ("\n =", ["\n", " ="]),
    ("!!!!!!", ["!!!!!!"]),
    ("\n\n\n", ["\n", "\n", "\n"]),
    ("нещо на Български", ["нещо", " на", " Български"]),
])
def test_deepseek_pretokenizer(text, expected):
    assert pretokens(text) == expected


MIXED = ["Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "    Hello\n    Hello  \n", "x = f(a, b)  # 42\n\tif y:",
         "нещо на Български 🦙.cpp", "価格は1,234円です。 한국어 텍스트", "a\u2581b  \u00a0 end   "]


def token_bytes(tok, i):
    piece = tok.id_to_piece(i)
    if type(tok).__name__ == "HFTokenizer":
        return len(piece)  # ByteLevel: one character per byte
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        return 1
    return len(piece.replace("\u2581", " ").encode())


@pytest.mark.parametrize("which", ["spm_ds_dir", "hf_dir"])
def test_tokens_never_cross_deepseek_pretokens(which, request):
    """With DeepSeek's pre-tokenizer (hf backend, or SentencePiece with pretokenizer='deepseek')
    every pre-token boundary is a token boundary."""
    from dsllm.tokenizer import load_tokenizer

    tok = load_tokenizer(request.getfixturevalue(which))
    for text in MIXED:
        pre = pretokens(text)
        pre_bounds, pos = set(), 0
        for p in pre:
            pos += len(p.encode())
            pre_bounds.add(pos)
        tok_bounds, pos = set(), 0
        for i in tok.encode(text):
            pos += token_bytes(tok, i)
            tok_bounds.add(pos)
        assert pos == len(text.encode())
        assert pre_bounds <= tok_bounds, (text, sorted(pre_bounds - tok_bounds))
