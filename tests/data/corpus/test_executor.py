"""The stages on datatrove's local executor with real worker processes give the same result as
tasks run one after another in this process."""
import threading
import warnings

from corpus_testlib import read_stage, small_config
from dsllm.data.corpus import synthetic
from dsllm.data.corpus.pipeline import run


def test_worker_processes_match_in_process_and_nothing_forks_a_threaded_caller(tmp_path):
    recs = synthetic.planted_corpus(n_distinct=80, n_clusters=30, copies=(1, 2), seed=11)
    inputs = synthetic.write_dumps(recs, str(tmp_path / "raw"))
    kept = []
    # The caller runs a thread, as a notebook kernel or a pytest-xdist worker does: forking it
    # (Python warns) can deadlock the child.
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for workers in (1, 2):
                cfg = small_config(inputs, tmp_path / f"w{workers}",
                                   **{"filters.enabled": False, "minhash.enabled": False})
                cfg.executor.workers = workers  # 2: forkserver worker processes, as in production
                run(cfg)
                kept.append(sorted(r["id"] for r in read_stage(tmp_path / f"w{workers}", "exact_dedup")))
    finally:
        stop.set()
    assert kept[0] == kept[1]
    assert len(kept[0]) < len(recs)
    assert not [w for w in caught if "use of fork" in str(w.message)], [str(w.message) for w in caught]
