"""Folding text for phrase matching: one case, no accents, plain quotes, single spaces."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

_APOSTROPHES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_DASHES: Final = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2013": "-", "\u2014": "-"})
_WHITESPACE: Final = re.compile(r"\s+")


def fold(text: str) -> str:
    """``text`` case-folded, without accents (``zurück`` → ``zuruck``, ``ß`` → ``ss``), with
    typographic apostrophes and dashes made plain and every run of whitespace one space.

    The phrase tables of the classifier are written in this form, so "Zurück am", "ZURUCK AM"
    and "zurück  am" all match ``zuruck am``.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _WHITESPACE.sub(" ", plain.translate(_APOSTROPHES).translate(_DASHES)).strip()
