"""An offline, deterministic drafter: the default, and what the demo and tests draft with.

:class:`TemplateDrafter` writes each message from sentence templates filled with what the
request carries: the value proposition (and proof, if any) taken from the campaign's brief,
the lead's first name, company, title and personalisation ``fields`` (industry, pain point,
recent news), the step's guidance and its place in the lead's cadence. The same request always
gives the same text: phrasing varies between leads and steps by a hash of the lead id and the
step, never by global randomness.

Lead values are untrusted: control characters and line breaks are removed and every value is
capped in length before it goes into a message, so no field can break a subject line or blow a
channel's limit.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs

from starlight_sequences.channels import Action
from starlight_sequences.drafts import ChannelLimits
from starlight_sequences.ports.drafter import (
    DraftedMessage,
    DraftFailure,
    DraftRequest,
    EarlierTouch,
)

__all__ = ["TemplateDrafter", "extract_pitch"]

_NAME_MAX: Final = 40
_COMPANY_MAX: Final = 60
_TITLE_MAX: Final = 60
_FIELD_MAX: Final = 120
_SUBJECT_PART_MAX: Final = 48
_BRIEF_SENTENCE_MAX: Final = 280
_EMAIL_WORDS_MAX: Final = 120
# Zero-width (non-)joiners are part of how some scripts (Persian, Indic, emoji) are written.
_JOINERS: Final = frozenset("\u200c\u200d")

# Keys of ``Lead.fields`` the drafter personalises with, matched case- and
# punctuation-insensitively (first key present wins).
_INDUSTRY_KEYS: Final = ("industry", "sector", "vertical", "market")
_PAIN_KEYS: Final = (
    "pain_point",
    "pain",
    "painpoint",
    "challenge",
    "problem",
    "pain_points",
    "challenges",
)
_NEWS_KEYS: Final = ("recent_news", "news", "trigger", "trigger_event", "recent_event", "event")

# Brief sentences that are notes to the writer, not things to tell the recipient.
_INSTRUCTION: Final = re.compile(
    r"^(write|tone|keep|don'?t|do not|avoid|mention|use|sign|target|audience|goal|cta|"
    r"call to action|make sure|never|always|be |please|note|focus|include|limit|style|voice|"
    r"the email|emails|messages?|our audience|we are writing|we want|i want)\b",
    re.IGNORECASE,
)
_CORE_LABEL: Final = re.compile(
    r"^(value( proposition| prop)?|pitch|offer|product|what we do|core message|promise)\s*:\s*",
    re.IGNORECASE,
)
_PROOF_LABEL: Final = re.compile(
    r"^(proof|social proof|case study|example|customers?|results?|evidence|track record)"
    r"\s*:\s*",
    re.IGNORECASE,
)
_OTHER_LABEL: Final = re.compile(r"^[\w /&-]{1,30}:\s*")
_CORE_WORDS: Final = re.compile(
    r"\b(help|helps|helping|lets|let you|enables?|so (that|you)|without|automat\w*|cut|cuts|"
    r"reduce\w*|save\w*|faster|grow\w*|increase\w*|simplif\w*|replace\w*|turns?|gives?)\b",
    re.IGNORECASE,
)
_SELF_WORDS: Final = re.compile(r"\b(we|our|us)\b", re.IGNORECASE)
_PROOF_WORDS: Final = re.compile(
    r"(\d|%|\b(customers?|clients?|teams like|for example|e\.g\.|case|results?|used by|"
    r"trusted|saw|went from|within \w+ (days|weeks|months))\b)",
    re.IGNORECASE,
)


# --- cleaning untrusted values ----------------------------------------------------------------


def _clean(value: str, limit: int) -> str:
    """One line of text: no control characters or line breaks, spaces collapsed, capped.

    The cap cuts at a word boundary when there is one in the second half of the allowance.
    """
    if value.isascii() and value.isprintable():
        # Printable ASCII has no control, format or separator characters: only spaces to fold.
        return _cap(" ".join(value.split()), limit)
    chars = []
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Cs", "Co", "Cn"):
            chars.append(" ")
        elif category == "Cf" and char not in _JOINERS:
            # Soft hyphens, bidi overrides, zero-width spaces: invisible or misleading.
            continue
        else:
            chars.append(char)
    text = " ".join("".join(chars).split())
    return _cap(text, limit)


def _cap(text: str, limit: int) -> str:
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—–")


def _fit_body(text: str, limit: int | None) -> str:
    """The body within ``limit``: cut at the last sentence or word boundary that fits."""
    text = text.strip()
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    for stop in (". ", "? ", "! ", "\n"):
        at = cut.rfind(stop)
        if at >= limit // 2:
            return cut[: at + 1].strip()
    return _cap(cut, limit)


def _field(fields: Mapping[str, str], keys: Sequence[str]) -> str:
    if not fields:
        return ""
    normalised = {re.sub(r"[^a-z0-9]+", "_", k.lower()).strip("_"): v for k, v in fields.items()}
    for key in keys:
        value = normalised.get(key)
        if value is not None:
            cleaned = _clean(value, _FIELD_MAX).rstrip(".!?;,: ")
            if cleaned:
                return cleaned
    return ""


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    # "Slow month-end close" reads better mid-sentence as "slow month-end close"; leave
    # acronyms ("ERP migrations") and names alone.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


# --- what the brief says ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Pitch:
    core: str
    proof: str


def _sentences(brief: str) -> list[tuple[str, str]]:
    """The brief's sentences as (label kind, sentence) with bullets and labels removed."""
    found: list[tuple[str, str]] = []
    for raw_line in brief.splitlines():
        line = raw_line.strip().lstrip("-*•·> ").strip()
        if not line:
            continue
        kind = ""
        if match := _CORE_LABEL.match(line):
            kind, line = "core", line[match.end() :]
        elif match := _PROOF_LABEL.match(line):
            kind, line = "proof", line[match.end() :]
        elif match := _OTHER_LABEL.match(line):
            # "Tone: friendly", "Audience: CFOs": notes to the writer.
            continue
        for piece in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“(])", line):
            sentence = _clean(piece, 10_000)
            if len(sentence) < 12 or sentence.endswith("?"):
                continue
            if not kind and _INSTRUCTION.match(sentence):
                continue
            found.append((kind, sentence))
    return found


def _as_sentence(text: str) -> str:
    text = _cap(text, _BRIEF_SENTENCE_MAX)
    if text and text[-1] not in ".!?":
        text += "."
    return _upper_first(text)


def extract_pitch(brief: str) -> tuple[str, str]:
    """The value proposition and the proof (social proof, a result) a brief states.

    Notes to the writer ("Tone: friendly", "Keep it short") are skipped. A line labelled
    ``Value proposition:`` / ``Offer:`` wins for the first, ``Proof:`` / ``Case study:`` /
    ``Customers:`` for the second; otherwise sentences are scored by the words they use (what
    the product does for the reader; numbers, customers and results). Either may be "" when the
    brief does not say it.

    Args:
        brief: the campaign's brief, as the user wrote it.

    Returns:
        (value proposition, proof), each one sentence of at most about 280 characters.
    """
    pitch = _pitch(brief)
    return pitch.core, pitch.proof


@functools.lru_cache(maxsize=64)
def _pitch(brief: str) -> _Pitch:
    # Cached: a campaign drafts thousands of messages from one brief.
    sentences = _sentences(brief)
    core = next((s for kind, s in sentences if kind == "core"), "")
    proof = next((s for kind, s in sentences if kind == "proof"), "")

    def core_score(item: tuple[int, str]) -> tuple[int, int]:
        index, sentence = item
        score = 3 * len(_CORE_WORDS.findall(sentence)) + 2 * bool(_SELF_WORDS.search(sentence))
        score -= 2 * bool(_PROOF_WORDS.search(sentence))
        score -= 3 * (len(sentence) > _BRIEF_SENTENCE_MAX)
        return (score, -index)

    def proof_score(item: tuple[int, str]) -> tuple[int, int]:
        index, sentence = item
        score = len(_PROOF_WORDS.findall(sentence)) - 3 * (len(sentence) > _BRIEF_SENTENCE_MAX)
        return (score, -index)

    unlabelled = [(i, s) for i, (kind, s) in enumerate(sentences) if not kind]
    if not core and unlabelled:
        core = max(unlabelled, key=core_score)[1]
    if not proof:
        rest = [(i, s) for i, s in unlabelled if s != core]
        if rest:
            index, best = max(rest, key=proof_score)
            if proof_score((index, best))[0] > 0:
                proof = best
    return _Pitch(
        core=_as_sentence(core) if core else "", proof=_as_sentence(proof) if proof else ""
    )


# --- what the guidance asks -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Cues:
    last: bool
    thank: bool
    max_words: int


@functools.lru_cache(maxsize=256)
def _cues(guidance: str) -> _Cues:
    # Cached: every lead of a step shares its guidance.
    text = guidance.lower()
    words = re.search(r"(?:under|at most|no more than|fewer than)\s+(\d{2,4})\s+words", text)
    return _Cues(
        last=bool(
            re.match(r"\W*(the )?(last|final)\b", text)
            or re.search(r"\b(this is the (last|final)|(last|final) (email|message) of)", text)
        ),
        thank=bool(re.search(r"\bthank", text)),
        max_words=int(words.group(1)) if words else _EMAIL_WORDS_MAX,
    )


# --- the drafter ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Facts:
    """The request's untrusted values, cleaned and capped, ready to put in sentences."""

    first: str
    company: str
    title: str
    industry: str
    pain: str
    news: str
    signature: str
    seed: str


def _facts(request: DraftRequest) -> _Facts:
    lead = request.lead
    first = _clean(lead.first_name, _NAME_MAX)
    # "MARÍA" from a shouting CRM export greets as "María".
    if first.isupper() and len(first) > 1:
        first = first.title()
    return _Facts(
        first=first,
        company=_clean(lead.company, _COMPANY_MAX),
        title=_clean(lead.title, _TITLE_MAX),
        industry=_lower_first(_field(lead.fields, _INDUSTRY_KEYS)),
        pain=_lower_first(_field(lead.fields, _PAIN_KEYS)),
        news=_field(lead.fields, _NEWS_KEYS),
        signature=_clean(request.sender_name, _NAME_MAX),
        seed=f"{lead.id}\x00{request.step}",
    )


def _pick(seed: str, purpose: str, options: Sequence[str]) -> str:
    """One of ``options``, the same one for the same seed and purpose."""
    digest = hashlib.sha256(f"{seed}\x00{purpose}".encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def _ordered(seed: str, purpose: str, options: Sequence[str]) -> list[str]:
    """``options`` rotated to start at the stable pick (for "first one that fits")."""
    first = options.index(_pick(seed, purpose, options))
    return [*options[first:], *options[:first]]


class _Angle(enum.StrEnum):
    CORE = "core"
    PROOF = "proof"
    CLOSE = "close"


def _email_angle(request: DraftRequest, cues: _Cues) -> str:
    # The position decides: the lead's first email makes the core point, its last email of
    # several closes, any email in between brings proof. Guidance that calls itself the last
    # email closes too (a custom shape may end on a LinkedIn step).
    emails_before = sum(1 for touch in request.earlier if touch.subject is not None)
    if emails_before == 0:
        return _Angle.CORE
    if cues.last or request.step_index == request.step_count:
        return _Angle.CLOSE
    return _Angle.PROOF


class TemplateDrafter:
    """Drafts from templates, offline and deterministically (the default drafter).

    Angles by touch: the first email makes the brief's core value point, tied to the lead's
    role, company and pain point; a follow-up takes the brief's proof (or a concrete example
    built from the lead's industry and pain point); the last email of a sequence is a short,
    low-pressure close with the easiest ask. Subjects never repeat an earlier touch's subject.
    A LinkedIn connection note is a short peer-like line with no pitch; a LinkedIn message
    thanks for connecting and asks one easy question. Every result is within its request's
    limits (checked with the same rules as :func:`~starlight_sequences.drafts.draft_problems`).
    """

    def draft(self, requests: Sequence[DraftRequest]) -> list[DraftedMessage | DraftFailure]:
        """Draft every request, in order; the same request always gives the same message."""
        return [self.draft_one(request) for request in requests]

    def draft_one(self, request: DraftRequest) -> DraftedMessage | DraftFailure:
        """Draft one request (see :meth:`draft`)."""
        facts = _facts(request)
        cues = _cues(request.guidance)
        limits = request.limits
        if limits.action is Action.LINKEDIN_CONNECT:
            return DraftedMessage(subject=None, body=_connection_note(facts, limits))
        if limits.action is Action.LINKEDIN_MESSAGE:
            body = _linkedin_message(facts, _pitch(request.brief), request.earlier, cues)
            return _finish(None, body, limits)
        angle = _email_angle(request, cues)
        pitch = _pitch(request.brief)
        writers: Mapping[str, Callable[[_Facts, _Pitch, _Cues], tuple[list[str], str]]] = {
            _Angle.CORE: _core_email,
            _Angle.PROOF: _proof_email,
            _Angle.CLOSE: _close_email,
        }
        subjects, body = writers[angle](facts, pitch, cues)
        subject = _fresh_subject(subjects, request.earlier, facts, limits)
        return _finish(subject, body, limits)


def _finish(subject: str | None, body: str, limits: ChannelLimits) -> DraftedMessage:
    return DraftedMessage(subject=subject, body=_fit_body(body, limits.body_max))


def _fresh_subject(
    candidates: Sequence[str],
    earlier: Sequence[EarlierTouch],
    facts: _Facts,
    limits: ChannelLimits,
) -> str:
    used = {" ".join(t.subject.split()).casefold() for t in earlier if t.subject}
    fallbacks = ["A thought for you", "One more idea", "A short note", "Quick question"]
    for candidate in [*candidates, *_ordered(facts.seed, "fallback-subject", fallbacks)]:
        subject = _cap(_clean(candidate, 10_000), max(limits.subject_max, 0))
        if subject and subject.casefold() not in used:
            return subject
    # Every candidate taken (a custom shape with many emails): number the touch.
    return _cap(f"{fallbacks[0]} ({len(earlier) + 1})", max(limits.subject_max, 1))


def _short(text: str) -> str:
    return _cap(text, _SUBJECT_PART_MAX)


def _greeting(facts: _Facts) -> str:
    return f"Hi {facts.first}," if facts.first else "Hi there,"


def _sign_off(facts: _Facts, words: Sequence[str]) -> str:
    closing = _pick(facts.seed, "sign-off", words)
    return f"{closing}\n{facts.signature}" if facts.signature else closing


def _where(facts: _Facts) -> str:
    return facts.company or "your team"


def _join(greeting: str, paragraphs: Sequence[str], sign_off: str) -> str:
    kept = [p for p in paragraphs if p]
    return "\n\n".join([greeting, *kept, sign_off])


def _within_words(paragraphs: list[str], limit: int, droppable: Sequence[int]) -> list[str]:
    """Drop the optional paragraphs (by index, in order) until the text fits ``limit`` words."""
    kept = list(paragraphs)
    for index in droppable:
        if sum(len(p.split()) for p in kept) <= limit:
            break
        kept[index] = ""
    return kept


def _core_email(facts: _Facts, pitch: _Pitch, cues: _Cues) -> tuple[list[str], str]:
    where = _where(facts)
    if facts.news:
        hook = _pick(
            facts.seed,
            "hook",
            [
                f"I saw the recent news at {where} ({facts.news}) and it prompted this note.",
                f"Reading about {facts.news} at {where} is what made me write.",
            ],
        )
    elif facts.title and facts.company:
        hook = _pick(
            facts.seed,
            "hook",
            [
                f"I'm writing to you because of your role as {facts.title} at {facts.company}.",
                f"As {facts.title} at {facts.company}, you're likely close to this.",
            ],
        )
    elif facts.company:
        hook = f"I'm writing to you because of your work at {facts.company}."
    else:
        hook = "I'll keep this short and specific."
    value = pitch.core or (
        f"I work on a way to take some of the routine work off teams like the one at {where}."
    )
    if facts.pain:
        relevance = _pick(
            facts.seed,
            "relevance",
            [
                f"Where this tends to matter most is {facts.pain}.",
                f"I suspect {facts.pain} is where it would show up first for {where}.",
            ],
        )
    elif facts.industry:
        relevance = f"It tends to matter most for teams in {facts.industry}."
    else:
        relevance = ""
    topic = facts.pain or "this"
    ask = _pick(
        facts.seed,
        "ask",
        [
            f"Is {topic} on your radar this quarter, or is someone else at {where} "
            "the right person?",
            f"Is {topic} something you're looking at right now? A one-line answer is plenty.",
        ],
    )
    paragraphs = _within_words([hook, value, relevance, ask], cues.max_words, droppable=(2, 0))
    body = _join(_greeting(facts), paragraphs, _sign_off(facts, ["Best,", "Thanks,", "Cheers,"]))
    subjects = _ordered(
        facts.seed,
        "core-subject",
        [
            f"{_upper_first(_short(facts.pain))} at {_short(where)}" if facts.pain else "",
            f"A question about {_short(where)}",
            f"An idea for {_short(where)}",
        ],
    )
    return [s for s in subjects if s], body


def _proof_email(facts: _Facts, pitch: _Pitch, cues: _Cues) -> tuple[list[str], str]:
    where = _where(facts)
    opening = _pick(
        facts.seed,
        "proof-opening",
        [
            "A different angle from my first note, and a concrete one.",
            "Here is a concrete example rather than a pitch.",
        ],
    )
    if pitch.proof:
        example = pitch.proof
    elif facts.pain and facts.industry:
        example = (
            f"In {facts.industry}, {facts.pain} usually shows up as hours of manual work each "
            "week that nobody owns; that is the part we take off the table."
        )
    elif facts.pain:
        example = (
            f"For most teams, {facts.pain} usually shows up as hours of manual work each week "
            "that nobody owns; that is the part we take off the table."
        )
    elif facts.industry:
        example = (
            f"Teams in {facts.industry} usually feel this as hours of manual work each week "
            "that nobody owns; that is the part we take off the table."
        )
    else:
        example = (
            "Usually this shows up as hours of manual work each week that nobody owns; that "
            "is the part we take off the table."
        )
    tie = f"I'd expect {where} to see something similar." if facts.company else ""
    ask = _pick(
        facts.seed,
        "proof-ask",
        [
            f"Would a short example of how that would look at {where} be useful?",
            "Worth a quick reply if that sounds familiar?",
        ],
    )
    paragraphs = _within_words([opening, example, tie, ask], cues.max_words, droppable=(2,))
    body = _join(_greeting(facts), paragraphs, _sign_off(facts, ["Best,", "Thanks,"]))
    subjects = _ordered(
        facts.seed,
        "proof-subject",
        [
            f"A concrete example for {_short(where)}",
            f"What this looks like in {_short(facts.industry)}" if facts.industry else "",
            f"How teams handle {_short(facts.pain)}" if facts.pain else "",
        ],
    )
    return [s for s in subjects if s], body


def _close_email(facts: _Facts, pitch: _Pitch, cues: _Cues) -> tuple[list[str], str]:
    where = _where(facts)
    opening = "This is my last note on this, so I'll keep it short."
    if facts.pain:
        middle = f"If {facts.pain} isn't a priority for {where} right now, that's fair."
    else:
        middle = "If the timing isn't right, that's completely fair."
    ask = _pick(
        facts.seed,
        "close-ask",
        [
            f"A simple yes or no is enough, or the name of the right person at {where}.",
            f"Is it a no for now, or is someone else at {where} better placed?",
        ],
    )
    door = "Either way, I'm happy to pick this up whenever it suits you."
    body = _join(_greeting(facts), [opening, middle, ask, door], _sign_off(facts, ["Best,"]))
    subjects = _ordered(
        facts.seed,
        "close-subject",
        ["Closing the loop", f"Last note for {_short(where)}", "One last question"],
    )
    return subjects, body


def _linkedin_message(
    facts: _Facts, pitch: _Pitch, earlier: Sequence[EarlierTouch], cues: _Cues
) -> str:
    hello = f"Hi {facts.first}," if facts.first else "Hi,"
    greeting = f"{hello} thanks for connecting." if cues.thank else hello
    emailed = any(touch.subject is not None for touch in earlier)
    where = _where(facts)
    if facts.pain:
        angle = _pick(
            facts.seed,
            "li-angle",
            [
                f"I've been talking with a few people about {facts.pain} lately.",
                f"Curious how {where} handles {facts.pain} today.",
            ],
        )
    elif pitch.core and not emailed:
        angle = pitch.core
    elif facts.industry:
        angle = f"I've been talking with a few people in {facts.industry} lately."
    else:
        angle = "I've been comparing notes with people in similar roles lately."
    question = _pick(
        facts.seed,
        "li-question",
        [
            "What's the one thing you'd change about it?",
            f"Is that something {where} is working on this year?",
        ],
    )
    return f"{greeting} {angle} {question}"


def _connection_note(facts: _Facts, limits: ChannelLimits) -> str:
    """A peer-like note: the richest variant that fits the limit, else a cut one."""
    hello = f"Hi {facts.first}," if facts.first else "Hi,"
    sign = f" {facts.signature.split()[0]}" if facts.signature else ""
    field = facts.industry or facts.pain
    candidates: list[str] = []
    if facts.title and facts.company and field:
        candidates.extend(
            _ordered(
                facts.seed,
                "note-rich",
                [
                    f"{hello} I came across your work as {facts.title} at {facts.company}. "
                    f"I spend a lot of time around {field} too, and would be glad to connect."
                    f"{sign}",
                    f"{hello} your work at {facts.company} caught my eye. I work around "
                    f"{field} as well and always like comparing notes with peers.{sign}",
                ],
            )
        )
    if facts.company:
        candidates.append(
            f"{hello} I came across your work at {facts.company} and would be glad to connect."
            f"{sign}"
        )
    if field:
        candidates.append(f"{hello} I work around {field} too; would be glad to connect.{sign}")
    candidates.append(f"{hello} would be glad to connect.{sign}")
    candidates.append("Would be glad to connect.")
    limit = limits.body_max
    for candidate in candidates:
        if limit is None or len(candidate) <= limit:
            return candidate
    return _fit_body(candidates[-1], limit)
