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
