"""The 15 special tokens and the DeepSeek LLM pre-tokenizer definition.

Special tokens (full-width bars U+FF5C and U+2581 separators, DeepSeek's spelling). They are
never produced from raw text by `encode` (a document that happens to contain the string
"<｜end▁of▁sentence｜>" is tokenized as ordinary text), so data cannot inject them.
"""

from __future__ import annotations

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜pad｜>"

# Order is the order of their ids in a dsllm-trained tokenizer: SentencePiece puts them at ids
# 0..14 (PAD doubles as SentencePiece's mandatory unknown piece, which byte fallback never
# emits), the Hugging Face backend appends them after the learned tokens (as DeepSeek does:
# BOS = 100000 with 100,000 learned tokens).
SPECIAL_TOKENS: tuple[str, ...] = (
    PAD,                          # padding (SentencePiece's unk slot; never produced)
    BOS,                          # begin of sentence / document
    EOS,                          # end of sentence / document / assistant turn
    "<｜System｜>",               # chat: system prompt
    "<｜User｜>",                 # chat: user turn
    "<｜Assistant｜>",            # chat: assistant turn
    "<｜fim▁begin｜>",            # fill-in-the-middle: prefix starts (DeepSeek-Coder names)
    "<｜fim▁hole｜>",             # fill-in-the-middle: the hole
    "<｜fim▁end｜>",              # fill-in-the-middle: suffix ends, middle follows
    "<｜tool▁calls▁begin｜>",     # tool use: calls block
    "<｜tool▁calls▁end｜>",
    "<｜tool▁outputs▁begin｜>",   # tool use: outputs block
    "<｜tool▁outputs▁end｜>",
    "<｜reserved▁0｜>",           # reserved for later use
    "<｜reserved▁1｜>",
)
assert len(SPECIAL_TOKENS) == 15 and len(set(SPECIAL_TOKENS)) == 15

# Code-point form of the DeepSeek LLM pre-tokenizer regexes (shared/reference/deepseek_llm_paper.md
# section 5, identical to llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM list).
LETTERS = (
    "\u0041-\u005A\u0061-\u007A\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293"
    "\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1"
    "\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD"
    "\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D"
    "\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC"
    "\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC"
    "\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139"
    "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3"
    "\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06"
    "\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3"
    "\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF"
    "\U0001E900-\U0001E943"
)
NEWLINE_RE = "[\r\n]"
LETTERS_RE = "\\s?[" + LETTERS + "]+"
PUNCT_RE = "\\s?[\u0021-\u002F\u003A-\u007E\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"
TRAILING_SPACE_RE = "\\s+$"
CJK_RE = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"
DEEPSEEK_SPLITS = (NEWLINE_RE, LETTERS_RE, PUNCT_RE, TRAILING_SPACE_RE, CJK_RE)


def deepseek_pre_tokenizer():
    """The released DeepSeek LLM pre-tokenizer as a Hugging Face `tokenizers` object."""
    from tokenizers import Regex, pre_tokenizers as pt

    return pt.Sequence(
        [pt.Split(Regex(r), behavior="isolated", invert=False) for r in DEEPSEEK_SPLITS]
        + [pt.Digits(individual_digits=True),
           pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])


def deepseek_splitter():
    """DeepSeek's pre-tokenizer without the final ByteLevel step: splits text into the same
    pieces (as plain strings), for the SentencePiece backend's `pretokenizer="deepseek"`."""
    from tokenizers import Regex, pre_tokenizers as pt

    return pt.Sequence([pt.Split(Regex(r), behavior="isolated", invert=False) for r in DEEPSEEK_SPLITS]
                       + [pt.Digits(individual_digits=True)])
