"""The one rule for text that ends up in an email header, and for identifiers.

Header text is every value a sender writes into a header line: a draft's subject, a mailbox's
display name (``From:``) and a lead's first and last name (``To:``). Each is checked where it
enters the library (``Lead``, ``EmailIdentity``, a drafted or edited ``Draft``), so text that
review accepted can never be refused by a sender later. The rule, applied in this order:

1. **Normalised** (harmless, done silently): a tab becomes a space, and surrounding white
   space is removed, line breaks at either end included (a trailing newline from a text field
   or a file separates nothing once it is removed). Inner spaces are kept as written.
2. **Refused** (what is left must not hold any of these): C0 and C1 control characters and
   DEL (CR and LF among them: a header is one line), the Unicode line and paragraph separators
   U+2028 and U+2029, unpaired surrogates (they cannot be written as UTF-8), and the
   bidirectional embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069.

Why the bidirectional controls: they reorder the rest of the header line as the recipient's
mail client shows it, which is how a sender name or subject is made to read as something else
("Trojan Source" text). Right-to-left names and subjects do not need them: the Unicode bidi
algorithm orders Arabic and Hebrew text by itself, and the implicit marks (LRM U+200E, RLM
U+200F, ALM U+061C), which cannot reorder beyond their neighbours, stay allowed. So do the
zero-width joiners, which Persian, Indic scripts and emoji sequences need.

Identifiers (lead ids, sender ids) are not normalised at all (an id is a key, and changing it
silently would make two contacts of one): any refused character, and also a tab, refuses them.

Callers turn a problem into their own typed error naming the object and the field
(``InvalidLead``, ``InvalidIdentity``, a draft needing attention).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from typing import Final

import attrs

__all__ = [
    "UnsafeCharacter",
    "UnsafeKind",
    "find_unsafe_character",
    "header_text_problem",
    "identifier_problem",
    "normalise_header_text",
]

# Unicode White_Space (what str.isspace() matches, minus the information separators
# U+001C..U+001F, which are control characters to a reader).
_WHITE_SPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_LINE_BREAKS: Final = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# Every character _kind() names: Cc (C0, DEL, C1), the separators, bidi controls, surrogates.
_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class UnsafeKind(enum.StrEnum):
    """What makes a character unsafe, in words."""

    LINE_BREAK = "line break"
    """CR, LF and the other characters ``str.splitlines`` ends a line at."""
    CONTROL = "control character"
    """Any other C0 or C1 control character, DEL, and (in identifiers) the tab."""
    BIDI = "bidirectional control"
    """An embedding, override or isolate (U+202A..U+202E, U+2066..U+2069)."""
    SURROGATE = "unpaired surrogate"
    """Half of a UTF-16 pair: cannot be written as UTF-8."""


@attrs.frozen(kw_only=True)
class UnsafeCharacter:
    """The first refused character of a text, and where it is.

    Attributes:
        char: the character.
        position: where it is in the text as given, counted from 1.
        kind: what makes it unsafe.
    """

    char: str
    position: int
    kind: UnsafeKind

    @property
    def reason(self) -> str:
        """The problem in words: ``contains a line break (U+000A) at position 6``."""
        return f"contains a {self.kind.value} (U+{ord(self.char):04X}) at position {self.position}"


def _kind(char: str) -> UnsafeKind:
    """What makes ``char`` unsafe; only called on characters ``_UNSAFE`` matched."""
    if char in _LINE_BREAKS:
        return UnsafeKind.LINE_BREAK
    if char in _BIDI_CONTROLS:
        return UnsafeKind.BIDI
    if unicodedata.category(char) == "Cs":
        return UnsafeKind.SURROGATE
    return UnsafeKind.CONTROL


def find_unsafe_character(text: str, *, offset: int = 0) -> UnsafeCharacter | None:
    """The first character of ``text`` that no header or identifier may hold, or None.

    Tabs count (they are control characters); header text has them replaced first, see
    :func:`normalise_header_text`.

    Args:
        text: the text to look through.
        offset: added to the reported position (for a text cut out of a longer one).
    """
    found = _UNSAFE.search(text)
    if found is None:
        return None
    char = found.group()
    return UnsafeCharacter(char=char, position=offset + found.start() + 1, kind=_kind(char))


def normalise_header_text(text: str) -> str:
    """``text`` with the harmless changes made: tabs become spaces, surrounding white space
    (line breaks included) is removed. Never raises; check the result with
    :func:`header_text_problem`. Normalising twice changes nothing more."""
    return text.replace("\t", " ").strip(_WHITE_SPACE)


def header_text_problem(text: str) -> UnsafeCharacter | None:
    """Why ``normalise_header_text(text)`` cannot go into an email header, or None when it can.

    The position is counted in ``text`` as given, so a user can find the character.
    """
    spaced = text.replace("\t", " ")
    leading = len(spaced) - len(spaced.lstrip(_WHITE_SPACE))
    return find_unsafe_character(normalise_header_text(text), offset=leading)


def identifier_problem(text: str) -> UnsafeCharacter | None:
    """Why ``text`` cannot be an identifier (a lead id, a sender id), or None.

    Identifiers are not normalised: a tab, a line break or any other refused character
    anywhere refuses the id.
    """
    return find_unsafe_character(text)
