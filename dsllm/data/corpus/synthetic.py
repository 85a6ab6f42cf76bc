"""A synthetic multi-dump web corpus with planted duplicates, for tests and benchmarks.

Every document carries its ground truth in the record: `cluster` (documents planted as copies
of one page share it) and `kind`:
- "distinct": a page of its own;
- "original": the first copy of a page that has planted copies;
- "exact": the same text up to case and spacing;
- "near": a small edit of the page (a few words replaced, a sentence dropped or added) with its
  navigation/footer boilerplate lines reordered.

`multi_dump_corpus` models recrawls for the paper's Table 1: each dump holds new pages, pages
recrawled from earlier dumps (identical or lightly edited) and within-dump duplicates, so the
deduplication rate grows with the number of dumps deduplicated together.
"""

from __future__ import annotations

import gzip
import json
import os
import random

STOP = ["the", "of", "and", "to", "in", "that", "with", "for", "is", "was", "have", "be", "on", "as", "by"]
_SYL = ["ka", "lo", "mi", "ra", "ten", "sor", "vel", "dun", "pri", "mas", "cor", "lin", "bet", "ful", "gan",
        "tro", "ish", "pen", "dra", "mon", "sta", "que", "ber", "nal", "ove", "rit", "sel", "tur", "vox", "zen"]


class TextGen:
    def __init__(self, seed: int = 0, vocab: int = 6000):
        self.rng = random.Random(seed)
        words = set()
        r = random.Random(1234)
        while len(words) < vocab:
            words.add("".join(r.choice(_SYL) for _ in range(r.randint(1, 3))))
        self.words = sorted(words)
        # Zipf-like weights: frequent words are short-ish, like real text
        self.cum = []
        acc = 0.0
        for i in range(len(self.words)):
            acc += 1.0 / (i + 10)
            self.cum.append(acc)

    def word(self) -> str:
        if self.rng.random() < 0.3:
            return self.rng.choice(STOP)
        return self.rng.choices(self.words, cum_weights=self.cum, k=1)[0]

    def sentence(self) -> str:
        ws = [self.word() for _ in range(self.rng.randint(8, 18))]
        return " ".join(ws).capitalize() + self.rng.choice([".", ".", ".", "!", "?"])

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(3, 6)))

    def body(self, n_paragraphs: int | None = None) -> list[str]:
        return [self.paragraph() for _ in range(n_paragraphs or self.rng.randint(3, 6))]

    def boilerplate(self) -> tuple[list[str], list[str]]:
        site = self.word().capitalize() + " " + self.word().capitalize()
        nav = [f"{site} Home", "About us | Contact | Careers", f"Latest news from {site}"]
        foot = [f"Copyright {self.rng.randint(1998, 2024)} {site}.", "Terms of use | Privacy | Cookies"]
        return nav, foot


def compose(nav, body, foot) -> str:
    return "\n".join(nav) + "\n\n" + "\n\n".join(body) + "\n\n" + "\n".join(foot)


def exact_variant(text: str, rng: random.Random) -> str:
    """Same text up to case and spacing (what exact dedup's normalized key ignores)."""
    choice = rng.randrange(3)
    if choice == 0:
        return text
    if choice == 1:
        return text.replace(" ", "  ", 3)
    return text.upper() if rng.random() < 0.2 else text + "\n"


def near_variant(page: dict, gen: TextGen, rng: random.Random, edit_frac: float = 0.01) -> str:
    """A small edit: ~edit_frac of words replaced, maybe a sentence dropped or added, and the
    boilerplate lines reordered."""
    body = [p.split(" ") for p in page["body"]]
    n_words = sum(len(p) for p in body)
    for _ in range(max(1, int(n_words * edit_frac))):
        p = rng.randrange(len(body))
        body[p][rng.randrange(len(body[p]))] = gen.word()
    paras = [" ".join(p) for p in body]
    if rng.random() < 0.3:
        paras[-1] = paras[-1] + " " + gen.sentence()
    nav, foot = list(page["nav"]), list(page["foot"])
    rng.shuffle(nav)
    rng.shuffle(foot)
    if rng.random() < 0.5:
        nav, foot = foot, nav
    return compose(nav, paras, foot)


def new_page(gen: TextGen) -> dict:
    nav, foot = gen.boilerplate()
    return dict(nav=nav, body=gen.body(), foot=foot)


def planted_corpus(n_distinct: int = 1000, n_clusters: int = 200, copies: tuple[int, int] = (1, 3),
                   n_dumps: int = 3, near_frac: float = 0.6, seed: int = 0) -> list[dict]:
    """Distinct pages plus clusters of planted copies spread over dumps. Returns records with
    text, id, dump, cluster and kind."""
    gen, rng = TextGen(seed), random.Random(seed + 1)
    recs = []
    for i in range(n_distinct):
        p = new_page(gen)
        recs.append(dict(text=compose(p["nav"], p["body"], p["foot"]), cluster=f"d{i}", kind="distinct"))
    for c in range(n_clusters):
        p = new_page(gen)
        base = compose(p["nav"], p["body"], p["foot"])
        recs.append(dict(text=base, cluster=f"c{c}", kind="original"))
        for _ in range(rng.randint(*copies)):
            if rng.random() < near_frac:
                recs.append(dict(text=near_variant(p, gen, rng), cluster=f"c{c}", kind="near"))
            else:
                recs.append(dict(text=exact_variant(base, rng), cluster=f"c{c}", kind="exact"))
    rng.shuffle(recs)
    for i, r in enumerate(recs):
        r["id"] = f"doc{i:07d}"
        r["dump"] = f"dump-{rng.randrange(n_dumps):02d}"
    return recs


def multi_dump_corpus(n_dumps: int = 8, docs_per_dump: int = 2000, recrawl: float = 0.55,
                      within_dup: float = 0.2, edit_prob: float = 0.5, seed: int = 0) -> list[dict]:
    """Dumps as successive crawls: in each dump a fraction `recrawl` of pages are recrawls of
    pages seen in earlier dumps (identical, or edited with probability `edit_prob`),
    `within_dup` are copies of pages of the same dump, the rest are new pages."""
    gen, rng = TextGen(seed), random.Random(seed + 1)
    seen: list[tuple[int, dict]] = []
    recs = []
    for d in range(n_dumps):
        this: list[tuple[int, dict]] = []
        rc = recrawl if seen else 0.0  # the first dump has nothing to recrawl
        for _ in range(docs_per_dump):
            u = rng.random()
            if u < rc:
                cid, p = rng.choice(seen)
                kind = "near" if rng.random() < edit_prob else "exact"
            elif this and u < rc + within_dup:
                cid, p = rng.choice(this)
                kind = "near" if rng.random() < edit_prob else "exact"
            else:
                cid, p = len(seen) + len(this), new_page(gen)
                this.append((cid, p))
                kind = "original"
            text = compose(p["nav"], p["body"], p["foot"])
            if kind == "near":
                text = near_variant(p, gen, rng)
            elif kind == "exact":
                text = exact_variant(text, rng)
            recs.append(dict(id=f"d{d:02d}-{len(recs):07d}", text=text, dump=f"dump-{d:02d}", cluster=f"p{cid}",
                             kind=kind))
        seen.extend(this)
    return recs


def write_dumps(recs: list[dict], root: str, source: str = "web", files_per_dump: int = 2) -> list[dict]:
    """Writes records to root/<source>/<dump>/part-N.jsonl.gz; returns config `inputs` entries."""
    by_dump: dict[str, list[dict]] = {}
    for r in recs:
        by_dump.setdefault(r["dump"], []).append(r)
    inputs = []
    for dump, rs in sorted(by_dump.items()):
        d = os.path.join(root, source, dump)
        os.makedirs(d, exist_ok=True)
        for k in range(files_per_dump):
            with gzip.open(os.path.join(d, f"part-{k}.jsonl.gz"), "wt", encoding="utf-8") as f:
                for r in rs[k::files_per_dump]:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        inputs.append(dict(source=source, dump=dump, paths=os.path.join(d, "*.jsonl.gz")))
    return inputs


def main(argv):
    """`python -m dsllm.data.corpus.synthetic --out=ROOT`: a demo corpus for configs/corpus/example.py
    (web: several dumps with recrawls; wiki: one dump), plus ROOT/tokenizer trained on it."""
    from absl import flags

    F = flags.FLAGS
    recs = multi_dump_corpus(n_dumps=F.dumps, docs_per_dump=F.docs_per_dump, seed=F.seed)
    write_dumps(recs, os.path.join(F.out, "raw"), source="web", files_per_dump=F.files_per_dump)
    gen = TextGen(F.seed + 99)
    wiki = [dict(id=f"wiki{i}", text="\n\n".join(gen.body()), dump="wiki-2024") for i in range(F.docs_per_dump // 4)]
    write_dumps(wiki, os.path.join(F.out, "raw"), source="wiki", files_per_dump=1)
    if F.tokenizer_vocab:
        from dsllm.tokenizer import train_tokenizer

        sample = os.path.join(F.out, "tokenizer_sample.txt")
        with open(sample, "w", encoding="utf-8") as f:
            for r in recs[:5000] + wiki[:2000]:
                f.write(r["text"] + "\n\n")
        train_tokenizer([sample], F.tokenizer_vocab, os.path.join(F.out, "tokenizer"))
    print(f"wrote {len(recs)} web and {len(wiki)} wiki documents under {F.out}/raw")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("out", "/tmp/corpus_demo", "output root")
    flags.DEFINE_integer("dumps", 4, "web dumps")
    flags.DEFINE_integer("docs_per_dump", 2000, "documents per web dump")
    flags.DEFINE_integer("files_per_dump", 2, "JSONL files per dump")
    flags.DEFINE_integer("tokenizer_vocab", 4096, "train ROOT/tokenizer with this vocab (0: skip)")
    flags.DEFINE_integer("seed", 0, "random seed")
    app.run(main)
