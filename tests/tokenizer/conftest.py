"""Small tokenizers trained once per session on a multilingual fixture corpus."""

import random

import pytest

CJK = "我想在工作你好世界中文数据训练模型日本語のテキストです한국어텍스트입니다"
EXTRA = [
    "我想在apple工作1314151天～ 你好，世界。",
    "    Hello\n    Hello\r\n\tx = 42  # comment\n",
    "нещо на Български 🦙.cpp Führer ½ months",
    "def f(x):\n    return x ** 2 + 3.14159\n\n\n",
    "価格は1,234円です。Ελληνικά κείμενα. עברית 😁👍🏽 e\u0301te\u0301",
]


def fixture_corpus(n_chars: int = 600_000, seed: int = 0) -> str:
    import pydoc_data.topics as topics

    rng = random.Random(seed)
    parts = list(topics.topics.values())
    out, size = [], 0
    while size < n_chars:
        p = rng.choice(parts)
        if rng.random() < 0.3:
            p = p + "\n" + "".join(rng.choice(CJK) for _ in range(rng.randint(5, 80)))
        if rng.random() < 0.3:
            p = p + "\n" + rng.choice(EXTRA) + str(rng.randint(0, 10**9))
        out.append(p)
        size += len(p)
    return "\n\n".join(out)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokcorpus")
    p = d / "corpus.txt"
    p.write_text(fixture_corpus(), encoding="utf-8")
    return str(p)


@pytest.fixture(scope="session")
def spm_dir(tmp_path_factory, corpus_file):
    from dsllm.tokenizer import train_tokenizer

    return train_tokenizer([corpus_file], 2048, str(tmp_path_factory.mktemp("spm")))


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory, corpus_file):
    from dsllm.tokenizer import train_tokenizer

    return train_tokenizer([corpus_file], 2048, str(tmp_path_factory.mktemp("hf")), backend="hf")


@pytest.fixture(scope="session")
def spm_ds_dir(tmp_path_factory, corpus_file):
    from dsllm.tokenizer import train_tokenizer

    return train_tokenizer([corpus_file], 2048, str(tmp_path_factory.mktemp("spm_ds")), pretokenizer="deepseek")


@pytest.fixture(scope="session", params=["spm", "spm_deepseek", "hf"])
def tok(request, spm_dir, spm_ds_dir, hf_dir):
    from dsllm.tokenizer import load_tokenizer

    return load_tokenizer({"spm": spm_dir, "spm_deepseek": spm_ds_dir, "hf": hf_dir}[request.param])
