"""The pipeline's JSON report, read from datatrove's per-phase stats.json files:
documents in and out of each stage, what each step removed and why, bytes and tokens per source,
and the achieved remix mixture next to its target."""

from __future__ import annotations

import json
import os
import re

from dsllm.data.corpus.common import STAGES, logs_dir

# reasons a step reports that are not drops
_NOT_REASONS = {"total", "forwarded", "dropped", "documents", "doc_len", "doc_len_tokens", "modified", "bytes",
                "tokens", "line-total", "line-kept", "batches"}


def _load_stats(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _value(v):
    if isinstance(v, dict):
        return v.get("total", v.get("n", 0))
    return v


def _clean(name: str) -> str:
    """'🫂 - DEDUPS: 💥 exact-deduplication stage 3' -> 'exact-deduplication stage 3'."""
    return re.sub(r"^[^\w]+", "", name.split(": ", 1)[-1])


def _steps(work_dir: str, stage: str) -> dict[str, list[dict]]:
    root = os.path.join(work_dir, "logs", stage)
    if not os.path.isdir(root):
        return {}
    return {phase: _load_stats(os.path.join(logs_dir(work_dir, stage, phase), "stats.json"))
            for phase in sorted(os.listdir(root))}


def _tally(step_stats: dict, prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: int(_value(v)) for k, v in step_stats.items() if k.startswith(prefix)}


def build_report(work_dir: str, cfg=None) -> dict:
    report = {"work_dir": os.path.abspath(work_dir), "stages": {}}
    prev_out = None
    for stage in STAGES:
        phases = _steps(work_dir, stage)
        if not phases:
            continue
        entry = {"steps": {}}
        for phase, steps in phases.items():
            for st in steps:
                name, stats = st.get("name", "?"), st.get("stats", {})
                reasons = {k: int(_value(v)) for k, v in stats.items()
                           if (k.startswith("dropped_") or k.startswith("skipped_")) and k not in _NOT_REASONS}
                if name.endswith("dsllm tally"):
                    entry["documents_out"] = int(_value(stats.get("documents", 0)))
                    entry["bytes_out"] = int(_value(stats.get("bytes", 0)))
                    entry["out_by_source"] = {"documents": _tally(stats, "docs/source/"),
                                              "bytes": _tally(stats, "bytes/source/")}
                    entry["out_by_dump"] = {"documents": _tally(stats, "docs/dump/")}
                    if _tally(stats, "docs/domain/"):
                        entry["out_by_domain"] = {"documents": _tally(stats, "docs/domain/"),
                                                  "bytes": _tally(stats, "bytes/domain/")}
                    continue
                rec = {k: int(_value(stats[k])) for k in ("total", "forwarded", "dropped") if k in stats}
                if reasons:
                    rec["reasons"] = reasons
                if name.endswith("dsllm corpus reader"):
                    entry["documents_in_raw"] = int(_value(stats.get("documents", 0)))
                elif "READER" in name and "documents" in stats:  # the stage's read of the previous output
                    entry["documents_in"] = max(entry.get("documents_in", 0), int(_value(stats["documents"])))
                if name.endswith("dsllm tokenize to shards"):
                    entry["tokens"] = int(_value(stats.get("tokens", 0)))
                    entry["documents_out"] = int(_value(stats.get("documents", 0))) - reasons.get(
                        "skipped_empty_document", 0)
                    entry["tokens_by_source"] = _tally(stats, "tokens/source/")
                    entry["tokens_by_split"] = _tally(stats, "tokens/split/")
                    entry["bytes_by_source"] = _tally(stats, "bytes/source/")
                if rec:
                    entry["steps"][f"{phase}/{_clean(name)}"] = rec
        if "documents_in_raw" in entry:
            entry["documents_in"] = entry["documents_in_raw"]
        elif "documents_in" not in entry and prev_out is not None:
            entry["documents_in"] = prev_out
        if "documents_out" in entry and "documents_in" in entry and entry["documents_in"]:
            entry["removed_fraction"] = round(1 - entry["documents_out"] / entry["documents_in"], 6)
        prev_out = entry.get("documents_out", prev_out)
        report["stages"][stage] = entry
    if cfg is not None and "remix" in report["stages"] and cfg.remix.weights:
        r = report["stages"]["remix"]
        unit = "bytes" if cfg.remix.unit == "bytes" else "documents"
        achieved = r.get("out_by_domain" if cfg.remix.key == "domain" else "out_by_source", {}).get(unit, {})
        tot = sum(achieved.values()) or 1
        wsum = sum(cfg.remix.weights.values()) or 1
        r["mixture"] = {"unit": unit, "key": cfg.remix.key,
                        "target": {g: w / wsum for g, w in cfg.remix.weights.items()},
                        "achieved": {g: n / tot for g, n in achieved.items()}}
    return report


def write_report(work_dir: str, cfg=None) -> str:
    rep = build_report(work_dir, cfg)
    path = os.path.join(work_dir, "report.json")
    with open(path + ".tmp", "w") as f:
        json.dump(rep, f, indent=1, ensure_ascii=False)
    os.replace(path + ".tmp", path)
    return path
