"""The demo's default corpus: English prose that ships with Python itself.

No download, and legal to use (Python Software Foundation License): the text of
`pydoc_data/topics.py` (the reference manual pages that `help()` shows), the docstrings of
the standard library's modules, classes and functions (read with `ast` from the `.py`
files, never imported, so no module code runs), and a few prose files of the stdlib
(IDLE's README and NEWS, the email package's architecture notes). Tests are left out.

On Python 3.12 this is about 2.5 MB in about 680 documents: one per reference topic, one
per stdlib module (its docstring, then each class and function docstring under its name),
one per prose file. The order is fixed, so the corpus is the same on every run of the
same Python; it differs between Python versions.

    python -m dsllm.data.default_corpus --out=runs/corpus.jsonl [--max_bytes=1000000]
"""

from __future__ import annotations

import ast
import json
import os
import sys
import sysconfig
import warnings
from typing import Iterator

# Directories whose docstrings are test descriptions, third-party code or caches.
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
_PROSE_FILES = ("email/architecture.rst", "idlelib/README.txt", "idlelib/HISTORY.txt", "idlelib/NEWS.txt",
                "idlelib/NEWS2x.txt", "idlelib/TODO.txt", "idlelib/extend.txt", "idlelib/CREDITS.txt")
_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def topic_documents() -> Iterator[tuple[str, str]]:
    """(source, text) for each reference-manual topic that `help()` shows."""
    from pydoc_data.topics import topics  # a plain dict of strings: importing it runs nothing else

    for name in sorted(topics):
        yield f"pydoc_data.topics:{name}", topics[name]


def _docstrings(tree: ast.Module) -> list[tuple[str, str]]:
    """(qualified name, docstring) of a module's classes and functions, in source order."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _DEFINITIONS):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child, clean=True)
                if doc:
                    out.append((name, doc))
                visit(child, name + ".")

    visit(tree, "")
    return out


def module_document(source: str, module: str) -> str | None:
    """A module's docstrings as one document, or None if it has none."""
    with warnings.catch_warnings():  # old escape sequences in some stdlib files warn on parse
        warnings.simplefilter("ignore")
        tree = ast.parse(source)
    parts = []
    doc = ast.get_docstring(tree, clean=True)
    if doc:
        parts.append(f"Module {module}\n\n{doc}")
    parts.extend(f"{name}\n\n{text}" for name, text in _docstrings(tree))
    return "\n\n".join(parts) if parts else None


def _module_files(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def docstring_documents(root: str | None = None, skipped: list | None = None) -> Iterator[tuple[str, str]]:
    """(source, text) per stdlib module with docstrings; unreadable files go to `skipped`."""
    root = root or stdlib_dir()
    for path in _module_files(root):
        rel = os.path.relpath(path, root)
        module = rel[:-3].replace(os.sep, ".").removesuffix(".__init__")
        try:
            with open(path, encoding="utf-8") as f:
                text = module_document(f.read(), module)
        except (SyntaxError, UnicodeDecodeError, ValueError) as e:
            if skipped is not None:
                skipped.append(f"{rel}: {type(e).__name__}")
            continue
        if text:
            yield f"stdlib:{rel}", text


def prose_documents(root: str | None = None) -> Iterator[tuple[str, str]]:
    root = root or stdlib_dir()
    for rel in _PROSE_FILES:
        path = os.path.join(root, rel)
        if os.path.exists(path):  # some distributions leave idlelib out
            with open(path, encoding="utf-8") as f:
                yield f"stdlib:{rel}", f.read()


def default_documents(skipped: list | None = None) -> Iterator[tuple[str, str]]:
    """Every (source, text) of the default corpus, in its fixed order."""
    yield from topic_documents()
    yield from docstring_documents(skipped=skipped)
    yield from prose_documents()


def write_default_corpus(out_path: str, max_bytes: int | None = None) -> dict:
    """Writes the default corpus as JSONL ({"text", "source"} per line) and returns its stats.

    `max_bytes` caps the UTF-8 bytes of text: documents are taken whole, in order, until the
    next one would pass the cap. The file appears only when complete.
    """
    if max_bytes is not None and max_bytes < 1:
        raise ValueError(f"max_bytes must be positive or None, got {max_bytes}")
    stats = {"documents": 0, "bytes": 0, "sources": {}, "python": sys.version.split()[0], "skipped_files": []}
    tmp = out_path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for source, text in default_documents(skipped=stats["skipped_files"]):
                n_bytes = len(text.encode("utf-8"))
                if max_bytes is not None and stats["bytes"] + n_bytes > max_bytes:
                    break
                f.write(json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n")
                kind = source.split(":")[0]
                stats["sources"][kind] = stats["sources"].get(kind, 0) + 1
                stats["documents"] += 1
                stats["bytes"] += n_bytes
        if not stats["documents"]:
            raise ValueError(f"max_bytes={max_bytes} is smaller than the first document; raise it")
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return stats


def _main(argv):
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    stats = write_default_corpus(flags.FLAGS.out, flags.FLAGS.max_bytes)
    print(f"wrote {flags.FLAGS.out}: {stats['documents']:,} documents, {stats['bytes']:,} bytes "
          f"(Python {stats['python']}; by source {stats['sources']}; "
          f"unparsable files skipped: {len(stats['skipped_files'])})")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("out", None, "Output JSONL file.", required=True)
    flags.DEFINE_integer("max_bytes", None, "Cap on the corpus size in UTF-8 bytes of text (default: all).")
    app.run(_main)
