"""Recognising automatic answers: RFC 3834 and vendor headers, out-of-office subjects and texts.

The phrase tables are in folded form (see ``_folding.fold``): lower case, no accents.
"""

from __future__ import annotations

import enum
import re
from email.message import Message
from typing import Final

import attrs

from starlight_sequences.inbound._folding import fold
from starlight_sequences.inbound._headers import one_line, raw_value

MAX_PHRASE_SEARCH_CHARS: Final = 3_000
"""Out-of-office phrases are looked for in the first three thousand characters of the text."""


class Automation(enum.IntEnum):
    """What the headers say about who wrote the message, strongest first."""

    AUTO_REPLY = 1
    """An automatic reply by its own declaration (``Auto-Submitted: auto-replied``,
    ``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply``)."""
    AUTOMATIC = 2
    """Machine-made, not necessarily a reply (``Auto-Submitted`` with another value,
    ``Precedence: bulk`` or ``junk``)."""
    NONE = 3
    """Nothing says it is automatic."""


@attrs.frozen(kw_only=True)
class HeaderEvidence:
    """What the headers say about automation, and which header said it."""

    automation: Automation
    header: str = ""
    list_header: str = ""
    """The header that marks mail sent to a list (``List-Id``, ``List-Unsubscribe``,
    ``Precedence: list``), or ""."""
    suppresses_auto_responses: bool = False
    """``X-Auto-Response-Suppress`` is present: Exchange sets it on the messages its servers
    generate, out-of-office replies among them."""


def _token(value: str) -> str:
    """The first word of a header value, lower-case, without comments or parameters."""
    text = re.sub(r"\([^()]*\)", " ", one_line(value).lower())
    words = text.split(";", 1)[0].split()
    return words[0] if words else ""


def header_evidence(message: Message) -> HeaderEvidence:
    """What the RFC 3834, RFC 2369 and vendor headers of ``message`` say about automation."""
    found: list[tuple[Automation, str]] = []
    submitted = _token(raw_value(message, "auto-submitted"))
    if submitted and submitted != "no":
        strength = Automation.AUTO_REPLY if submitted == "auto-replied" else Automation.AUTOMATIC
        found.append((strength, f"Auto-Submitted: {submitted}"))
    for name in ("X-Autoreply", "X-Autorespond"):
        value = one_line(raw_value(message, name))
        if value and value.lower() not in {"no", "false", "0"}:
            found.append((Automation.AUTO_REPLY, f"{name}: {value[:40]}"))
    precedence = _token(raw_value(message, "precedence"))
    if precedence in {"auto_reply", "auto-reply"}:
        found.append((Automation.AUTO_REPLY, f"Precedence: {precedence}"))
    elif precedence in {"bulk", "junk"}:
        found.append((Automation.AUTOMATIC, f"Precedence: {precedence}"))
    list_headers = [name for name in ("List-Id", "List-Unsubscribe") if raw_value(message, name)]
    if precedence == "list":
        list_headers.append("Precedence: list")
    strength, header = min(found, key=lambda item: item[0], default=(Automation.NONE, ""))
    return HeaderEvidence(
        automation=strength,
        header=header,
        list_header=list_headers[0] if list_headers else "",
        suppresses_auto_responses=bool(raw_value(message, "x-auto-response-suppress").strip()),
    )


def _alternatives(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])(?:" + "|".join(phrases) + r")(?![\w'])")


_SUBJECT_PHRASES: Final = _alternatives(
    # English
    r"automatic reply",
    r"auto[- ]?reply",
    r"automatic response",
    r"auto[- ]?response",
    r"out of (?:the )?office",
    r"ooo",
    r"away from (?:the|my) office",
    r"on (?:vacation|holidays?|leave|annual leave|parental leave)",
    r"absence(?: notice)?",
    r"vacation reply",
    # German
    r"automatische (?:antwort|ruckantwort)",
    r"abwesenheit\w*",
    r"nicht im buro",
    r"ausser haus",
    r"(?:im )?urlaub",
    # French
    r"reponse automatique",
    r"absente?",
    r"en conges?",
    r"en vacances",
    r"hors du bureau",
    r"message d'absence",
    # Spanish
    r"respuesta automatica",
    r"fuera de (?:la )?oficina",
    r"ausente",
    r"ausencia",
    r"de vacaciones",
    # Portuguese
    r"resposta automatica",
    r"fora do escritorio",
    r"(?:de|em) ferias",
    # Italian
    r"risposta automatica",
    r"fuori (?:ufficio|sede)",
    r"assen(?:te|za)",
    r"in (?:ferie|vacanza)",
    # Dutch
    r"automatisch (?:antwoord|bericht)",
    r"afwezig\w*",
    r"niet op kantoor",
    r"buiten kantoor",
    r"(?:met|op) vakantie",
)
_BODY_PHRASES: Final = _alternatives(
    # English
    r"out of (?:the )?office",
    r"away from (?:the|my) (?:office|desk)",
    r"on (?:annual |parental |maternity |paternity |sick |medical )?"
    r"(?:leave|vacation|holidays?)",
    r"(?:limited|no) access to (?:my )?e-?mails?",
    r"i(?: am|'m) (?:currently )?(?:away|out)",
    # German
    r"nicht im buro",
    r"ausser haus",
    r"abwesend",
    r"(?:im|in) urlaub",
    r"keinen? zugriff auf (?:meine )?e-?mails?",
    r"eingeschrankt erreichbar",
    r"nicht erreichbar",
    r"elternzeit",
    # French
    r"absente? du bureau",
    r"je suis absente?",
    r"en conges?",
    r"en vacances",
    r"hors du bureau",
    r"acces limite",
    # Spanish
    r"fuera de (?:la )?oficina",
    r"estoy ausente",
    r"de vacaciones",
    r"acceso limitado",
    r"no estare disponible",
    r"estare fuera",
    # Portuguese
    r"fora do escritorio",
    r"estou ausente",
    r"(?:de|em) ferias",
    r"acesso limitado",
    r"estarei (?:fora|ausente)",
    # Italian
    r"fuori (?:ufficio|sede)",
    r"sono assente",
    r"in (?:ferie|vacanza)",
    r"accesso limitato",
    r"non saro raggiungibile",
    # Dutch
    r"afwezig",
    r"niet op kantoor",
    r"buiten kantoor",
    r"(?:met|op) vakantie",
    r"beperkt bereikbaar",
    r"niet bereikbaar",
)
_SELF_DECLARED: Final = _alternatives(
    r"automatic (?:reply|response|message)",
    r"auto-?reply",
    r"autoreply",
    r"this (?:is an |message was )?automat\w*",
    r"automatische (?:antwort|nachricht|ruckantwort)",
    r"(?:reponse|message) automatique",
    r"(?:respuesta|mensaje) automatic[oa]",
    r"(?:resposta|mensagem) automatica",
    r"(?:risposta|messaggio) automatic[oa]",
    r"automatisch (?:antwoord|bericht|gegenereerd)",
)
_REPLY_PREFIX: Final = re.compile(
    r"(?<![\w'])(?:re|aw|wg|fw|fwd|tr|rv|enc|sv|vs|antw|r|rif|res|ref)(?: ?\[\d+\])? ?:"
)


def own_subject(subject: str) -> str:
    """The part of a subject before the first reply or forward prefix ("Re:", "AW:", ...),
    folded: the words the answering system added, not the subject it answers."""
    folded = fold(subject)
    prefix = _REPLY_PREFIX.search(folded)
    return folded[: prefix.start()] if prefix else folded


def subject_phrase(subject: str) -> str | None:
    """The out-of-office phrase in the subject's own part, or None."""
    found = _SUBJECT_PHRASES.search(own_subject(subject))
    return found.group(0) if found else None


def body_phrase(text: str) -> str | None:
    """The first out-of-office phrase in the text, or None."""
    found = _BODY_PHRASES.search(fold(text[:MAX_PHRASE_SEARCH_CHARS]))
    return found.group(0) if found else None


def self_declared(text: str) -> str | None:
    """The phrase by which the text says it was sent automatically, or None."""
    found = _SELF_DECLARED.search(fold(text[:MAX_PHRASE_SEARCH_CHARS]))
    return found.group(0) if found else None
