"""The corpus pipeline's configuration (ml_collections). `configs/corpus/*.py` start from
`default_config()` and set inputs, work_dir, weights and the tokenizer."""

from __future__ import annotations

import ml_collections as mlc


def default_config() -> mlc.ConfigDict:
    c = mlc.ConfigDict()
    # [{"source": "web", "dump": "CC-MAIN-2023-06", "paths": "raw/web/2023-06/*.jsonl.gz"}, ...];
    # "format" (jsonl|parquet) is inferred from the extension; "domain" may be a record field.
    c.inputs = []
    c.work_dir = ""
    c.text_field = "text"
    c.id_field = "id"
    c.on_error = "raise"          # malformed input: "raise" (stop, naming file:line) or "skip" (count it)
    c.tasks = 4                   # datatrove tasks per phase (input files are split across them)

    c.executor = mlc.ConfigDict(dict(
        kind="local",             # local | slurm | ray
        workers=-1,               # concurrent tasks (-1: all cores for local)
        start_method="forkserver",
        slurm=dict(partition="", time="04:00:00", cpus_per_task=1, mem_per_cpu_gb=2, venv_path="",
                   sbatch_args={}),
        ray=dict(cpus_per_task=1, mem_per_cpu_gb=2),
    ))

    c.normalize = mlc.ConfigDict(dict(enabled=True, form="NFC", max_blank_lines=2, min_chars=1))
    c.exact_dedup = mlc.ConfigDict(dict(enabled=True, hash_fc="xxhash"))
    c.minhash = mlc.ConfigDict(dict(enabled=True, n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1,
                                    precision=64, hash_fc="xxhash"))
    c.filters = mlc.ConfigDict(dict(
        enabled=True,
        gopher_quality=dict(enabled=True, min_doc_words=50, max_doc_words=100_000, min_avg_word_length=3,
                            max_avg_word_length=10, max_symbol_word_ratio=0.1, max_bullet_lines_ratio=0.9,
                            max_ellipsis_lines_ratio=0.3, max_non_alpha_words_ratio=0.8, min_stop_words=2),
        gopher_repetition=dict(enabled=True, dup_line_frac=0.3, dup_para_frac=0.3, dup_line_char_frac=0.2,
                               dup_para_char_frac=0.2, top_n_grams=((2, 0.2), (3, 0.18), (4, 0.16)),
                               dup_n_grams=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))),
        c4=dict(enabled=True, split_paragraph=True, remove_citations=True, filter_no_terminal_punct=True,
                min_num_sentences=5, min_words_per_line=3, max_word_length=1000, filter_lorem_ipsum=True,
                filter_javascript=True, filter_curly_bracket=True, filter_policy=True),
        fineweb=dict(enabled=False, line_punct_thr=0.12, short_line_thr=0.67, short_line_length=30,
                     char_duplicates_ratio=0.01, new_line_ratio=0.3),
    ))
    # Remix: weights per group (source, or "domain" when records carry one); empty = keep as is.
    c.remix = mlc.ConfigDict(dict(enabled=True, key="source", unit="bytes", weights={}, total=0.0, seed=0))
    c.remix.weights = mlc.ConfigDict({})
    c.tokenize = mlc.ConfigDict(dict(enabled=True, tokenizer="", shards_per_task=1, validation_fraction=0.01,
                                     batch_size=256, seed=0))
    return c


def get_config() -> mlc.ConfigDict:
    return default_config()
