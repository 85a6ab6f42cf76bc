"""On a submitting executor (Slurm, Ray) the requested stages become one dependent chain, built
before any input exists. Recorded with a stand-in executor: this checks our chaining, not Slurm."""

import os

from dsllm.data.corpus import pipeline


class Recorded:
    made = []

    def __init__(self, pipeline_steps, tasks, logging_dir, depends, job_name):
        self.tasks, self.logging_dir, self.depends, self.job_name, self.ran = tasks, logging_dir, depends, job_name, False
        Recorded.made.append(self)

    def run(self):
        self.ran = True


def test_stages_are_chained_and_submitted_once(monkeypatch, tmp_path):
    from corpus_testlib import small_config  # the folder's conftest puts corpus_testlib on sys.path

    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"text": "one document"}\n')
    inputs = [{"source": "web", "dump": "d0", "paths": str(raw)}]
    cfg = small_config(inputs, tmp_path / "work", **{"executor.kind": "slurm", "tasks": 7})
    Recorded.made = []
    monkeypatch.setattr(pipeline, "make_executor",
                        lambda ex, steps, *, tasks, logging_dir, depends=None, job_name="": Recorded(
                            steps, tasks, logging_dir, depends, job_name))
    assert pipeline.run(cfg) is None  # submitted: no report yet
    made = Recorded.made
    assert len(made) > 3
    assert made[0].depends is None
    for prev, nxt in zip(made, made[1:]):
        assert nxt.depends is prev  # every phase waits for the one before, across stages too
    assert [e.ran for e in made] == [False] * (len(made) - 1) + [True]  # running the last submits all
    # phases that read the previous stage's (not yet written) output are sized by cfg.tasks
    readers = [e for e in made if e.job_name.endswith(("-signature", "-filter"))]
    assert readers and all(e.tasks == 7 for e in readers)
    assert not os.path.exists(os.path.join(cfg.work_dir, "report.json"))
