"""Which writing systems a text's letters are in, and whether a model's training data held them.

A model trained on English news reads Chinese, Arabic or Cyrillic text without complaint and returns
confident nonsense. ``train()`` saves how many letters of each script its training documents hold
(``metadata.json``'s ``"scripts"``); extraction refuses a text whose letters are mostly in scripts that data
(nearly) never held, with one message naming the text and the scripts, unless told to read any script. Letters
only: digits, punctuation, symbols, emoji and spaces belong to no script here. Torch-free.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["script_of", "count_scripts", "ScriptCheck", "UNSEEN_SHARE", "REFUSE_SHARE"]

UNSEEN_SHARE = 0.001  # a script holding under 0.1 % of the training letters counts as one the data did not hold
REFUSE_SHARE = 0.5  # a text is refused when more than half its letters are in such scripts

# the first word of a letter's Unicode name, where it is not the script's name as written here
_NAME_WORD = {"CJK": "Han", "IDEOGRAPHIC": "Han", "FULLWIDTH": None, "HALFWIDTH": None, "MATHEMATICAL": None}


@lru_cache(maxsize=65536)
def script_of(ch: str) -> str | None:
    """The script of one character if it is a letter (``Latin``, ``Han``, ``Cyrillic``, ``Arabic``, ...),
    else None. Read from the first word of its Unicode name, after NFKC folding (full-width ``Ａ`` is Latin)."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    folded = unicodedata.normalize("NFKC", ch)
    base = folded[0] if folded else ch
    name = unicodedata.name(base, "") or unicodedata.name(ch, "")
    if not name:
        return "Unknown"
    word = name.split()[0]
    script = _NAME_WORD.get(word, word.capitalize())
    if script is None:  # a width or style form NFKC did not fold: its next word names the script
        parts = name.split()
        script = parts[1].capitalize() if len(parts) > 1 else "Unknown"
    return script


def count_scripts(texts: Iterable[str]) -> Counter[str]:
    """Letters per script over ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_letters(text))
    return counts


_ASCII_LETTERS = string.ascii_letters.encode("ascii")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _letters(text: str) -> Counter[str]:
    """Letters per script of one text: ASCII letters counted in C, each distinct other character looked up once
    (a 100,000-character English text: well under a millisecond; Chinese: ~10 ms)."""
    counts: Counter[str] = Counter()
    ascii_part = text.encode("ascii", "ignore")
    latin = len(ascii_part) - len(ascii_part.translate(None, _ASCII_LETTERS))
    if latin:
        counts["Latin"] = latin
    if not text.isascii():
        for ch, n in Counter("".join(_NON_ASCII.findall(text))).items():
            script = script_of(ch)
            if script is not None:
                counts[script] += n
    return counts


@dataclass(frozen=True)
class ScriptCheck:
    """A model's training letters per script (``count_scripts`` of its training documents), and the test a
    text has to pass to be read by it."""

    counts: dict[str, int]

    @property
    def seen(self) -> frozenset[str]:
        """Scripts holding at least ``UNSEEN_SHARE`` of the training letters."""
        total = sum(self.counts.values())
        return frozenset(s for s, n in self.counts.items() if total and n / total >= UNSEEN_SHARE)

    def unseen_letters(self, text: str) -> tuple[int, Counter[str]]:
        """The text's letters, and its letters per script the training data did not hold."""
        counts = _letters(text)
        seen = self.seen
        return sum(counts.values()), Counter({s: n for s, n in counts.items() if s not in seen})

    def problem(self, text: str) -> str | None:
        """Why the model should not read ``text`` (more than ``REFUSE_SHARE`` of its letters in scripts its
        training data did not hold), else None."""
        letters, unseen = self.unseen_letters(text)
        n = sum(unseen.values())
        if not letters or n <= REFUSE_SHARE * letters:
            return None
        scripts = ", ".join(f"{s} ({k})" for s, k in unseen.most_common())
        return (f"{n} of its {letters} letters are in scripts the model's training data does not hold: {scripts}; "
                f"the model was trained on {self.describe()}")

    def problems(self, texts: Iterable[object]) -> Iterator[tuple[int, str]]:
        """``(index, why)`` for each of ``texts`` (strings, or anything with a string ``.text``, as a
        ``Document``) that ``problem`` refuses; other items are not this check's to judge."""
        for i, item in enumerate(texts):
            text = getattr(item, "text", item)
            why = self.problem(text) if isinstance(text, str) else None
            if why is not None:
                yield i, why

    def describe(self) -> str:
        """``Latin 99.95 %, Greek 0.05 %``: the training letters' scripts, the largest first (at most five), in
        percent to two decimals."""
        total = sum(self.counts.values()) or 1
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:5]
        return ", ".join(f"{s} {_percent(n / total)} %" for s, n in top) or "no letters"

    @classmethod
    def from_metadata(cls, meta: object) -> ScriptCheck | None:
        """The check saved in a model's metadata (``"scripts"``), or None for a model saved without one."""
        raw = meta.get("scripts") if isinstance(meta, dict) else None
        if not isinstance(raw, dict) or not raw:
            return None
        counts = {str(k): int(v) for k, v in raw.items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and int(v) > 0}
        return cls(counts) if counts else None


def _percent(share: float) -> str:
    """``0.9995`` -> ``99.95``, ``1.0`` -> ``100``, ``0.25`` -> ``25``."""
    return f"{100 * share:.2f}".rstrip("0").rstrip(".")
