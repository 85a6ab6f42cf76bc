"""DeepSeek's pre-tokenization rules, checked on every vocabulary piece (so they hold for any
encoding: an encoding is a sequence of vocabulary pieces) and on encodings of random text."""

import unicodedata

from hypothesis import given, settings, strategies as st

DIGITS = set("0123456789")
PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") | {chr(c) for c in range(0xFF01, 0xFF10)} | \
    {chr(c) for c in range(0xFF1A, 0xFF21)} | {chr(c) for c in range(0x2018, 0x2020)} | {"\u3001", "\u3002"}


def is_latin(c):
    return unicodedata.category(c).startswith("L") and unicodedata.name(c, "").startswith("LATIN")


def is_cjk(c):
    o = ord(c)
    return 0x4E00 <= o <= 0x9FFF or 0x3040 <= o <= 0x30FF or 0xAC00 <= o <= 0xD7AF or 0x3400 <= o <= 0x4DBF


def violations(piece: str) -> list[str]:
    """The rules one token's text must satisfy."""
    bad = []
    if any(c in DIGITS for c in piece) and len(piece) != 1:
        bad.append("digit shares a token")
    if ("\n" in piece or "\r" in piece) and piece not in ("\n", "\r"):
        bad.append("newline merged with other text")
    latin = any(is_latin(c) for c in piece)
    cjk = any(is_cjk(c) for c in piece)
    punct = any(c in PUNCT for c in piece)
    if latin and cjk:
        bad.append("CJK with Latin")
    if latin and punct:
        bad.append("punctuation with Latin")
    if cjk and punct:
        bad.append("CJK with punctuation")
    return bad


def test_every_vocab_piece_obeys_the_rules(tok):
    n = getattr(tok, "num_pieces", None) or tok.vocab_size
    special = set(tok.special_tokens.values())
    offenders = {}
    for i in range(n):
        if i in special:
            continue
        piece = tok.decode([i])
        v = violations(piece)
        if v:
            offenders[i] = (piece, v)
    assert not offenders, list(offenders.items())[:10]


def test_rule_checker_can_fail():
    assert violations("12") and violations("a\n") and violations("a你") and violations("a,") and violations("你。")
    assert not violations("hello") and not violations(" hello") and not violations("7") and not violations("\n")


MIXED = st.lists(st.sampled_from(
    ["hello", " world", "2024", "123456789", "你好", "世界", "。", "，", "!", "?!", "\n", "\n\n", "\r\n", " ",
     "    ", "\t", "Ελλάδα", "Привет", "😀", "👍🏽", "e\u0301", "x1y2", "中a文", "a,b", "(x)", "ü"]),
    min_size=1, max_size=30).map("".join)


@settings(max_examples=150, deadline=None)
@given(MIXED)
def test_encodings_obey_the_rules(tok, text):
    for i in tok.encode(text):
        assert not violations(tok.decode([i])), (text, tok.decode([i]))


def test_digits_are_single_tokens(tok):
    ids = tok.encode("w048 7tuijk 3333333 1,234.56")
    digit_ids = [i for i in ids if tok.decode([i]) in DIGITS]
    assert len(digit_ids) == sum(c.isdigit() for c in "w048 7tuijk 3333333 1,234.56")
