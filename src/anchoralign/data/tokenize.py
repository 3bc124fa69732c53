"""Rule-based word splitting with exact character offsets, for formats that ship raw text only.

These are the readers' pre-tokenizers (which units a span may start or end on), not the model's subword
tokenizer. Every function returns ``Token``s whose ``text == source[start:end]``.
"""

from __future__ import annotations

import re

from ..types import Token

__all__ = ["tokenize_text", "whitespace_tokens", "char_tokens", "CJK_RANGES"]

# CJK ideographs (basic, extensions A-F, compatibility), kana and Hangul syllables: one token per character,
# because Chinese benchmarks (SanWen, DuIE, CMeIE) are annotated at character level.
CJK_RANGES = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # Extension A
    "\u4e00-\u9fff"  # Unified Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # Compatibility Ideographs
    "\U00020000-\U0003134f"  # Extensions B-G
)

# Characters that belong to the one before them: combining diacritics (an accent typed as e + U+0301, as
# NFD text from macOS has it), variation selectors (the U+FE0F of ❤️) and emoji skin-tone modifiers. A token
# never starts with one when a character precedes it, so a span never cuts a letter from its accent.
_MARKS = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"  # combining marks
    "\ufe00-\ufe0f\U000e0100-\U000e01ef"  # variation selectors
    "\U0001f3fb-\U0001f3ff"  # emoji modifiers (skin tones)
)
_M = rf"[{_MARKS}]*"

# A CJK character; else a run of letters/digits that are not CJK; else any other single non-space character
# (an emoji joined to the next by U+200D stays one token, but a CJK character is never joined: it is a token
# of its own); each with the marks that follow it.
_TEXT_TOKEN = re.compile(
    rf"[{CJK_RANGES}]{_M}|(?:(?![{CJK_RANGES}])[^\W_]{_M})+|\S{_M}(?:\u200d(?![{CJK_RANGES}])\S{_M})*"
)
_WHITESPACE_TOKEN = re.compile(r"\S+")
_CHAR_TOKEN = re.compile(r"\S")


def tokenize_text(text: str) -> list[Token]:
    """CJK characters one token each, runs of other letters/digits one token, other non-space characters one each."""
    return [Token(m.group(), m.start(), m.end()) for m in _TEXT_TOKEN.finditer(text)]


def whitespace_tokens(text: str) -> list[Token]:
    """Maximal runs of non-whitespace characters (CasRel/WebNLG text is already space-separated)."""
    return [Token(m.group(), m.start(), m.end()) for m in _WHITESPACE_TOKEN.finditer(text)]


def char_tokens(text: str) -> list[Token]:
    """One token per non-whitespace character (character-level Chinese, as brat offsets are)."""
    return [Token(m.group(), m.start(), m.end()) for m in _CHAR_TOKEN.finditer(text)]
