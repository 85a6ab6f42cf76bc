"""The whole chain from the command line, re-running one stage, and the token shards it writes."""

import json
import os
import subprocess
import sys

from dsllm.data.shards import iter_documents, read_manifest
from dsllm.tokenizer import load_tokenizer

from corpus_testlib import read_stage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, env=env)


def test_chain_rerun_stage_and_shards(tmp_path):
    root = tmp_path / "demo"
    r = cli("dsllm.data.corpus.synthetic", f"--out={root}", "--dumps=2", "--docs_per_dump=300",
            "--tokenizer_vocab=1024")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = f"--config={REPO}/configs/corpus/example.py:{root}"
    r = cli("dsllm.data.corpus", cfg, "--config.tasks=2", "--config.executor.workers=1")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.load(open(root / "work" / "report.json"))
    st = report["stages"]
    assert list(st) == ["normalize", "exact_dedup", "minhash", "filter", "remix", "tokenize"]
    assert st["minhash"]["documents_out"] < st["minhash"]["documents_in"]  # recrawls removed
    assert set(st["tokenize"]["tokens_by_source"]) == {"web", "wiki"}

    # token shards: readable by the training side, tokens decode back to the remixed documents
    m = read_manifest(str(root / "work" / "06_tokenize" / "data"))
    tok = load_tokenizer(str(root / "tokenizer"))
    assert m["vocab_size"] == tok.vocab_size and m["bos_id"] == tok.bos_id
    texts = {r["text"] for r in read_stage(root / "work", "remix")}
    docs = list(iter_documents(m, "train")) + list(iter_documents(m, "validation"))
    assert len(docs) == st["tokenize"]["documents_out"] == m["splits"]["train"]["documents"] + \
        m["splits"]["validation"]["documents"]
    for toks, n_bytes in docs[:50]:
        text = tok.decode(toks)
        assert text in texts and len(text.encode()) == n_bytes
    assert sum(m["splits"][s]["tokens"] for s in m["splits"]) == st["tokenize"]["tokens"]

    # re-run only the filter stage with a stricter threshold: earlier stages are not redone
    before = os.path.getmtime(root / "work" / "03_minhash" / "data")
    r = cli("dsllm.data.corpus", cfg, "--stage=filter", "--config.tasks=2", "--config.executor.workers=1",
            "--config.filters.gopher_quality.min_doc_words=400")
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.getmtime(root / "work" / "03_minhash" / "data") == before
    st2 = json.load(open(root / "work" / "report.json"))["stages"]
    assert st2["filter"]["documents_out"] < st["filter"]["documents_out"]

    # a bad flag value fails before any work, naming the problem
    r = cli("dsllm.data.corpus", cfg, "--stage=nonsense")
    assert r.returncode == 2 and "unknown stage" in r.stderr
