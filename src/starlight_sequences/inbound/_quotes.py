"""Separating what a person wrote in a reply from the history it quotes and their signature."""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

import attrs

from starlight_sequences.inbound._mime import (
    MAX_TEXT_CHARS,
    Unreadable,
    body_text,
    normalise_text,
    parse,
)

_MAX_ATTRIBUTION_CHARS: Final = 400
_ATTRIBUTION_LINES: Final = 3
_HEADER_BLOCK_LOOKAHEAD: Final = 5

# "On <date>, <name> wrote:" and its translations, as Gmail, Apple Mail, Outlook for Mac,
# Thunderbird and the mobile clients write them (the line may be wrapped over three lines).
_ATTRIBUTION: Final = re.compile(
    r"""^(?:
        (?:on|am|le|el|em|no\ dia|il|op)\b.{0,350}?
        \b(?:wrote|schrieb|a\ écrit|a\ ecrit|escribió|escribio|escreveu|ha\ scritto
            |schreef|geschreven)\b[^:]{0,120}:
      | .{1,300}?(?:<[^<>\s]+@[^<>\s]+>|\S+@\S+).{0,80}?
        \b(?:wrote|schrieb|a\ écrit|a\ ecrit|escribió|escribio|escreveu|ha\ scritto
            |schreef)\s*:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_ATTRIBUTION_VERB: Final = re.compile(
    r"wrote|schrieb|crit|escribi|escreveu|scritto|schreef|geschreven", re.IGNORECASE
)
_ATTRIBUTION_OPENING: Final = re.compile(r"^(?:on|am|le|el|em|no dia|il|op)\b", re.IGNORECASE)
# Separators that start quoted or forwarded history in Outlook, Thunderbird, Gmail and others.
_SEPARATOR: Final = re.compile(
    r"""^\s*(?:
        _{10,}
      | -{2,}\s*(?:original\ message|ursprüngliche\ nachricht|message\ d'origine
            |mensaje\ original|mensagem\ original|messaggio\ originale|oorspronkelijk\ bericht
            |forwarded\ message|weitergeleitete\ nachricht|message\ transféré
            |mensaje\ reenviado|mensagem\ encaminhada|messaggio\ inoltrato
            |doorgestuurd\ bericht)\s*-{2,}
      | begin\ forwarded\ message:
      | anfang\ der\ weitergeleiteten\ nachricht:
      | début\ du\ message\ réexpédié\ :?
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Outlook's quoted header block: "From: …" followed within a few lines by "Sent: …" and so on.
_BLOCK_FROM: Final = re.compile(r"^\s*\*?(?:from|von|de|da|van)\s?\*?\s?:", re.IGNORECASE)
_BLOCK_NEXT: Final = re.compile(
    r"^\s*\*?(?:sent|date|gesendet|datum|envoyé|envoye|enviado|enviada|fecha|data|inviato"
    r"|verzonden|verstuurd|to|an|à|a|para|aan|subject|betreff|objet|asunto|assunto|oggetto"
    r"|onderwerp)\s?\*?\s?:",
    re.IGNORECASE,
)
_BLANK_RUNS: Final = re.compile(r"\n{3,}")
_SIGNATURE: Final = re.compile(r"^--\s*$")
_MOBILE_SIGNATURE: Final = re.compile(
    r"""^\s*(?:
        sent\ from\ my\ \S.{0,40}
      | sent\ from\ (?:outlook|mail|yahoo\ mail)\b.{0,40}
      | get\ outlook\ for\ (?:ios|android)
      | von\ meinem\ \S.{0,40}\ gesendet
      | gesendet\ von\ meinem\ \S.{0,40}
      | envoyé\ de\ mon\ \S.{0,40}
      | enviado\ desde\ mi\ \S.{0,40}
      | enviado\ do\ meu\ \S.{0,40}
      | inviato\ da(?:l\ mio)?\ \S.{0,40}
      | verzonden\ (?:vanaf|met)\ (?:mijn\ )?\S.{0,40}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


@attrs.frozen(kw_only=True)
class SplitReply:
    """A reply's own text, and whether anything quoted or signed was taken off it."""

    own: str
    quoted: bool


def _attribution_span(lines: list[str], start: int) -> int:
    """How many lines (1 to 3) the attribution starting at ``start`` spans; 0 if none.

    Only an attribution that opens with its language's first word ("On", "Am", "Le", ...)
    may be wrapped onto the following lines, and never across a blank line."""
    first = lines[start].strip()
    if not first or len(first) > _MAX_ATTRIBUTION_CHARS:
        return 0
    opens = _ATTRIBUTION_OPENING.match(first) is not None
    if _ATTRIBUTION_VERB.search(first) and _ATTRIBUTION.match(first):
        return 1
    if not opens:
        return 0
    joined = first
    for count in range(2, _ATTRIBUTION_LINES + 1):
        if start + count > len(lines) or not lines[start + count - 1].strip():
            return 0
        joined = f"{joined} {lines[start + count - 1].strip()}"
        if len(joined) > _MAX_ATTRIBUTION_CHARS:
            return 0
        if _ATTRIBUTION_VERB.search(joined) and _ATTRIBUTION.match(joined):
            return count
    return 0


def _starts_header_block(lines: list[str], start: int) -> bool:
    if len(lines[start]) > _MAX_ATTRIBUTION_CHARS or not _BLOCK_FROM.match(lines[start]):
        return False
    following = lines[start + 1 : start + 1 + _HEADER_BLOCK_LOOKAHEAD]
    return any(_BLOCK_NEXT.match(line) for line in following if len(line) < _MAX_ATTRIBUTION_CHARS)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def split_reply(text: str) -> SplitReply:
    """Split ``text`` into what the sender wrote and the rest (see :func:`strip_quoted_text`)."""
    lines = [line.rstrip() for line in normalise_text(text[:MAX_TEXT_CHARS]).split("\n")]
    own: list[str] = []
    quoted = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _SIGNATURE.match(line):
            quoted = quoted or any(_is_quoted(rest) for rest in lines[index:])
            break
        if _SEPARATOR.match(line) or _starts_header_block(lines, index):
            quoted = True
            break
        span = _attribution_span(lines, index)
        if span:
            quoted = True
            following = index + span
            while following < len(lines) and not lines[following].strip():
                following += 1
            if following < len(lines) and _is_quoted(lines[following]):
                index = following  # ">"-quoted history follows; answers between it stay
                continue
            break  # the history is not marked: everything below the attribution is quoted
        if _is_quoted(line):
            quoted = True
        elif not _MOBILE_SIGNATURE.match(line):
            own.append(line)
        index += 1
    text = _BLANK_RUNS.sub("\n\n", "\n".join(own)).strip("\n")
    return SplitReply(own=text, quoted=quoted)


def strip_quoted_text(text: str) -> str:
    """What a person wrote in ``text``, without the history their mail client quoted.

    Removed: ``>``-quoted lines; attribution lines ("On Mon, 30 Nov 2026 at 09:00, Ada <…>
    wrote:", "Am 30.11.2026 um 09:00 schrieb …:", "Le … a écrit :", and the Spanish,
    Portuguese, Italian and Dutch forms), and everything after one when the quoted history
    below it is not marked with ``>``; everything from an Outlook separator ("-----Original
    Message-----", a line of underscores, "From: … Sent: … To: … Subject:" blocks, in the seven
    languages) or a forwarded-message marker; everything from a signature delimiter (a line
    ``-- ``); and "Sent from my iPhone"-style lines. Answers written between ``>``-quoted
    passages are kept. Only the first hundred thousand characters are read.
    """
    return split_reply(text).own


def reply_text(message: Message | bytes) -> str:
    """The text the sender of ``message`` wrote, quoted history and signature removed.

    ``message`` is a parsed :class:`email.message.Message` or the raw bytes of one. The text is
    the first inline ``text/plain`` part, else the first ``text/html`` part turned into text;
    undecodable bytes become U+FFFD. Returns "" when there is no text; never raises.
    """
    if isinstance(message, bytes | bytearray):
        try:
            message = parse(bytes(message))
        except Unreadable:
            return ""
    return strip_quoted_text(body_text(message))
