"""Results tables: CSV files read as columns, written atomically."""

from __future__ import annotations

import csv
import os

import numpy as np


class ResultsError(ValueError):
    """A results file is missing, empty or lacks a column a command needs."""


def read_rows(path: str) -> list[dict]:
    if not os.path.exists(path):
        raise ResultsError(f"no results file at {path}")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def columns(path: str, required: list[str], optional: list[str] = ()) -> dict[str, np.ndarray]:
    """Numeric columns of a CSV as float arrays. Fails naming a missing column or a bad cell;
    optional columns are returned when present (with every cell filled)."""
    rows = read_rows(path)
    if not rows:
        raise ResultsError(f"{path} has no rows")
    header = list(rows[0].keys())
    missing = [c for c in required if c not in header]
    if missing:
        raise ResultsError(f"{path} lacks column(s) {missing}; it has {header}")
    out = {}
    for name in list(required) + [c for c in optional if c in header]:
        values = []
        for i, row in enumerate(rows):
            cell = (row.get(name) or "").strip()
            try:
                values.append(float(cell))
            except ValueError:
                if name in required:
                    raise ResultsError(f"{path} row {i + 2}: column {name!r} holds {cell!r}, not a number") from None
                values = None
                break
        if values is not None:
            out[name] = np.asarray(values)
    return out


def text_column(path: str, name: str) -> list[str] | None:
    rows = read_rows(path)
    return [r[name] for r in rows] if rows and name in rows[0] else None


def write_rows(path: str, rows: list[dict], fieldnames: list[str]):
    """Writes the whole table to a temporary file and renames it over `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(tmp, path)
