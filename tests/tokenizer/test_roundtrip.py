"""Lossless round trip for any UTF-8 text (no lone surrogates: those are not UTF-8)."""

from hypothesis import given, settings, strategies as st

ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
PIECES = st.sampled_from([
    "😀", "👨‍👩‍👧", "🇫🇷", "👍🏽", "中文", "日本語", "한국어", "e\u0301", "a\u0308\u0323", "\u200b", "\ufeff",
    "\x00", "\x07", "\x1b[0m", "\x7f", "\u2581", "\u2581\u2581", " ", "   ", "\t\t", "\n", "\r\n", "\u3000",
    "\u00a0", "0", "0123456789" * 3, "Hello", ",", "。", "<｜begin▁of▁sentence｜>", "\U0010FFFF", "\ue000",
])
STRUCTURED = st.lists(st.one_of(PIECES, ANY_TEXT), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_roundtrip_any_text(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(STRUCTURED)
def test_roundtrip_structured(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


@settings(max_examples=50, deadline=None)
@given(st.lists(STRUCTURED, max_size=8))
def test_roundtrip_batch(tok, texts):
    assert [tok.decode(ids) for ids in tok.encode_batch(texts)] == texts


def test_long_whitespace_and_digit_runs(tok):
    for text in [" " * 5000, "\n" * 3000, "9" * 10000, "\t \n" * 500, "a" + " " * 777 + "b"]:
        assert tok.decode(tok.encode(text)) == text
