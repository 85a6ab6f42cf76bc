"""Corpus pipeline benchmark and the paper's Table 1 on a synthetic multi-dump corpus.

    PYTHONPATH=. python -m dsllm.bench.corpus --mode=throughput --mb=100 --out=/tmp/corpusbench \
        --tokenizer=/tmp/tokbench/tok_sentencepiece_100000
    PYTHONPATH=. python -m dsllm.bench.corpus --mode=table1 --out=/tmp/table1

throughput: writes a synthetic multi-dump web corpus of about --mb MB (under --out, never in the
repo), runs every stage on datatrove's local executor with --workers processes and prints, per
stage, documents in, wall seconds and documents per second per core (docs_in / wall / workers).

table1: deduplicates (exact + MinHash, all dumps together) the first k dumps of a synthetic
recrawl corpus for several k and prints the deduplication rate (share of documents removed),
the shape of the paper's Table 1 (22.2% for 1 dump up to 89.8% for 91).
"""

from __future__ import annotations

import json
import os
import shutil
import time

from absl import app, flags

flags.DEFINE_enum("mode", "throughput", ["throughput", "table1"], "what to measure")
flags.DEFINE_integer("mb", 100, "throughput: corpus size in MB")
flags.DEFINE_string("out", "/tmp/dsllm_corpusbench", "work directory")
flags.DEFINE_string("tokenizer", "", "throughput: tokenizer for the tokenize stage (empty: skip it)")
flags.DEFINE_integer("workers", 2, "local executor processes (= cores used)")
flags.DEFINE_integer("dumps", 8, "number of dumps")
flags.DEFINE_integer("docs_per_dump", 1500, "table1: documents per dump")
FLAGS = flags.FLAGS


def _config(inputs, work_dir, tasks, workers):
    from dsllm.data.corpus.config import default_config

    cfg = default_config()
    cfg.inputs, cfg.work_dir, cfg.tasks = inputs, work_dir, tasks
    cfg.executor.workers = workers
    return cfg


def throughput():
    from dsllm.data.corpus import synthetic
    from dsllm.data.corpus.pipeline import enabled, run_stage
    from dsllm.data.corpus.report import write_report

    raw = os.path.join(FLAGS.out, "raw")
    if not os.path.isdir(raw):
        per_dump = int(FLAGS.mb * 1e6 / 2300 / FLAGS.dumps)  # synthetic pages average about 2.3 kB
        recs = synthetic.multi_dump_corpus(n_dumps=FLAGS.dumps, docs_per_dump=per_dump, seed=0)
        synthetic.write_dumps(recs, raw, files_per_dump=2)
    inputs = [dict(source="web", dump=d, paths=os.path.join(raw, "web", d, "*.jsonl.gz"))
              for d in sorted(os.listdir(os.path.join(raw, "web")))]
    work = os.path.join(FLAGS.out, "work")
    shutil.rmtree(work, ignore_errors=True)
    cfg = _config(inputs, work, tasks=2 * FLAGS.workers, workers=FLAGS.workers)
    cfg.remix.weights = {"web": 1.0}
    cfg.tokenize.enabled = bool(FLAGS.tokenizer)
    cfg.tokenize.tokenizer = FLAGS.tokenizer
    times = {}
    for stage in ("normalize", "exact_dedup", "minhash", "filter", "remix", "tokenize"):
        if not enabled(cfg, stage):
            continue
        t0 = time.time()
        run_stage(cfg, stage)
        times[stage] = time.time() - t0
    rep = json.load(open(write_report(work, cfg)))
    tok_full = None
    if FLAGS.tokenizer:
        # tokenization alone on the whole normalized corpus (the chained run tokenizes only what
        # deduplication left): earlier stages switched off, so tokenize reads 01_normalize
        cfg_t = _config(inputs, work, tasks=2 * FLAGS.workers, workers=FLAGS.workers)
        cfg_t.exact_dedup.enabled = cfg_t.minhash.enabled = cfg_t.filters.enabled = False
        cfg_t.tokenize.tokenizer = FLAGS.tokenizer
        t0 = time.time()
        run_stage(cfg_t, "tokenize")
        wall = time.time() - t0
        e = json.load(open(write_report(work, cfg_t)))["stages"]["tokenize"]
        n_mb = sum(e["bytes_by_source"].values()) / 1e6
        tok_full = dict(documents_in=e["documents_out"], text_mb=round(n_mb, 1), wall_s=round(wall, 1),
                        docs_per_s_per_core=round(e["documents_out"] / wall / FLAGS.workers, 1),
                        mb_per_s=round(n_mb / wall, 2), tokens=e["tokens"])
    rows = []
    for stage, wall in times.items():
        e = rep["stages"][stage]
        n_in = e.get("documents_in", 0)
        rows.append(dict(stage=stage, documents_in=n_in, documents_out=e.get("documents_out"), wall_s=round(wall, 1),
                         docs_per_s_per_core=round(n_in / wall / FLAGS.workers, 1)))
    raw_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(raw) for f in fs)
    res = dict(raw_gzip_mb=round(raw_bytes / 1e6, 1), text_mb=round(rep["stages"]["normalize"]["bytes_out"] / 1e6, 1),
               workers=FLAGS.workers, stages=rows, tokens=rep["stages"].get("tokenize", {}).get("tokens"),
               tokenize_whole_corpus=tok_full)
    print(json.dumps(res, indent=1))
    with open(os.path.join(FLAGS.out, "throughput.json"), "w") as f:
        json.dump(res, f, indent=1)


def table1():
    from dsllm.data.corpus import synthetic
    from dsllm.data.corpus.pipeline import run

    recs = synthetic.multi_dump_corpus(n_dumps=FLAGS.dumps, docs_per_dump=FLAGS.docs_per_dump, seed=0)
    raw = os.path.join(FLAGS.out, "raw")
    shutil.rmtree(raw, ignore_errors=True)
    inputs = synthetic.write_dumps(recs, raw, files_per_dump=1)
    rows = []
    ks = sorted({1, 2, 4, FLAGS.dumps} | ({6} if FLAGS.dumps > 6 else set()))
    for k in ks:
        cfg = _config(inputs[:k], os.path.join(FLAGS.out, f"work_{k}"), tasks=FLAGS.workers, workers=FLAGS.workers)
        cfg.filters.enabled = False
        cfg.tokenize.enabled = False
        rep = json.load(open(run(cfg)))["stages"]
        n_in = rep["normalize"]["documents_out"]
        after_exact = rep["exact_dedup"]["documents_out"]
        n_out = rep["minhash"]["documents_out"]
        rows.append(dict(dumps=k, documents=n_in, exact_removed=round(1 - after_exact / n_in, 4),
                         dedup_rate=round(1 - n_out / n_in, 4)))
        print(rows[-1])
    # baseline: every dump deduplicated on its own (FineWeb's choice), over all dumps
    removed = total = 0
    for d, spec in enumerate(inputs):
        cfg = _config([spec], os.path.join(FLAGS.out, f"work_single_{d}"), tasks=FLAGS.workers, workers=FLAGS.workers)
        cfg.filters.enabled = False
        cfg.tokenize.enabled = False
        rep = json.load(open(run(cfg)))["stages"]
        total += rep["normalize"]["documents_out"]
        removed += rep["normalize"]["documents_out"] - rep["minhash"]["documents_out"]
    per_dump = dict(dumps=len(inputs), documents=total, per_dump_dedup_rate=round(removed / total, 4))
    print(per_dump)
    with open(os.path.join(FLAGS.out, "table1.json"), "w") as f:
        json.dump(dict(cross_dump=rows, each_dump_alone=per_dump), f, indent=1)
    print("dumps  " + "  ".join(f"{r['dumps']:>5}" for r in rows))
    print("rate % " + "  ".join(f"{100 * r['dedup_rate']:5.1f}" for r in rows))


def main(argv):
    os.makedirs(FLAGS.out, exist_ok=True)
    throughput() if FLAGS.mode == "throughput" else table1()


if __name__ == "__main__":
    app.run(main)
