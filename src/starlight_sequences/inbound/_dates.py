"""The return date an out-of-office text states, in seven languages.

Only a date that the text states as a return counts: one right after a return phrase ("back
on", "zurück am", "de retour le", "de vuelta el", "volto dia", "rientro il", "terug op"), one
between a "from" word and an "again" word ("ab dem 12. Januar wieder", "vanaf 12 januari
weer"), or one after an "until" word ("until", "bis", "jusqu'au", "hasta", "até", "fino al",
"tot"). Any other date in the text is ignored. See ``docs/inbound.md`` for the rules.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterator
from typing import Final

import attrs

from starlight_sequences.inbound._folding import fold

MAX_SEARCH_CHARS: Final = 5_000
"""Only the first five thousand characters of an out-of-office text are searched."""
STALE_DAYS: Final = 30
"""A date without a year that fell at most this many days before the message is stale (an
out-of-office left on), not a return a year later: no return date is taken from it."""
_GAP_CHARS: Final = 40
_AGAIN_GAP_CHARS: Final = 40
_FROM_GAP_CHARS: Final = 12

_MONTHS: Final = {
    1: "january jan januar janner jan januari janvier janv enero ene janeiro gennaio gen",
    2: "february feb februar feber februari fevrier fevr fev febrero fevereiro febbraio",
    3: "march mar marz maerz maart mrt mars marzo marco",
    4: "april apr avril avr abril abr aprile",
    5: "may mai mei mayo maio maggio mag",
    6: "june jun juni juin junio junho giugno giu",
    7: "july jul juli juillet juil julio julho luglio lug",
    8: "august aug augustus aout agosto ago",
    9: "september sept sep septembre septiembre setiembre set setembro settembre sett",
    10: "october oct oktober okt octobre octubre outubro out ottobre ott",
    11: "november nov novembre noviembre novembro",
    12: "december dec dezember dez decembre diciembre dic dezembro dicembre",
}
_MONTH_NUMBER: Final = {name: number for number, names in _MONTHS.items() for name in names.split()}
_ENGLISH: Final = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_ENGLISH_MONTHS: Final = frozenset(_ENGLISH.split())
_MONTH_WORD: Final = "|".join(sorted(_MONTH_NUMBER, key=lambda name: (-len(name), name)))
_ENGLISH_MONTH_WORD: Final = "|".join(sorted(_ENGLISH_MONTHS, key=lambda name: (-len(name), name)))

_WEEKDAYS: Final = re.compile(
    r"""\b(?:
        (?:mon|tues|tue|wednes|wed|thurs|thur|thu|fri|satur|sat|sun)day
      | montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag
      | lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche
      | lunes|martes|miercoles|jueves|viernes|sabado|domingo
      | (?:segunda|terca|quarta|quinta|sexta)(?:-feira)?
      | lunedi|martedi|mercoledi|giovedi|venerdi|sabato|domenica
      | maandag|dinsdag|woensdag|donderdag|vrijdag|zaterdag|zondag
    )\b
    | \b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|mo|di|mi|do|fr|sa|so)(?:\.|,)""",
    re.VERBOSE,
)

_ISO: Final = re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)")
_DAY_MONTH: Final = re.compile(
    rf"(?P<d>[0-3]?\d)(?:st|nd|rd|th|er|e|o|°)?\.? ?(?:de |of |-)?(?P<mon>{_MONTH_WORD})"
    rf"(?![a-z])\.?(?:,? ?(?:de |del )?(?P<y>\d{{4}})(?!\d))?"
)
_MONTH_DAY: Final = re.compile(
    rf"(?P<mon>{_ENGLISH_MONTH_WORD})(?![a-z])\.? (?:the )?(?P<d>[0-3]?\d)(?:st|nd|rd|th)?"
    rf"(?!\d)(?:,? (?P<y>\d{{4}})(?!\d))?"
)
_NUMERIC: Final = re.compile(
    r"(?P<a>[0-3]?\d)(?P<sep>[./-])(?P<b>[0-3]?\d)(?:(?P=sep)(?P<y>\d{4}|\d{2})(?!\d))?(?![\d/-])"
)
_DATE_START: Final = re.compile(rf"(?<![a-z0-9])(?=\d|(?:{_MONTH_WORD})(?![a-z]))")
_SENTENCE_END: Final = re.compile(r"[.!?;\n]")
_DIGIT: Final = re.compile(r"\d")


class _Cue(enum.IntEnum):
    """How a date is introduced, in order of trust (the lowest wins)."""

    RETURN = 1
    FROM_AGAIN = 2
    UNTIL = 3
    UNTIL_INCLUSIVE = 4


_RETURN_WORDS: Final = {
    "en": r"back|return|returning|returns|returned|return date",
    "de": r"zuruck|zurueck|wieder|ruckkehr|rueckkehr",
    "fr": r"de retour|retour|reviens|reviendrai|rentre|rentrerai",
    "es": r"de vuelta|de regreso|vuelvo|volvere|regreso|regresare|me reincorporo"
    r"|me reincorporare|reincorporacion",
    "pt": r"volto|voltarei|de volta|retorno|retornarei|regresso|regressarei",
    "it": r"rientro|rientrero|rientrera|di ritorno|tornero|tornera|torno|ritorno",
    "nl": r"terug|weer aanwezig|weer op kantoor|weer bereikbaar",
}
_UNTIL_WORDS: Final = {
    "en": r"until|till|til",
    "de": r"bis(?: zum| zu)?",
    "fr": r"jusqu'(?:au|a|a la)|jusqu au",
    "es": r"hasta(?: el)?",
    "pt": r"ate(?: dia| o dia| ao dia| o)?",
    "it": r"fino al?|sino al?|fino a tutto il",
    "nl": r"tot",
}
_UNTIL_INCLUSIVE_WORDS: Final = {
    "en": r"through|thru|up to and including",
    "de": r"bis (?:einschliesslich|einschl\.?|inklusive|inkl\.?)(?: zum)?|bis zum einschliesslich",
    "fr": r"jusqu'au (?:inclus|compris)",
    "nl": r"tot en met|t/m",
}
_FROM_WORDS: Final = {
    "en": r"from|as of|starting|on",
    "de": r"ab(?: dem| den)?|am|vom|seit dem",
    "fr": r"a partir du|a compter du|des le|le",
    "es": r"a partir del?|desde el|el",
    "pt": r"a partir de|a partir do|desde|dia|em",
    "it": r"a partire dal|dal|il",
    "nl": r"vanaf|per|op",
}
_AGAIN_WORDS: Final = {
    "en": r"back|again|return",
    "de": r"wieder|zuruck|zurueck",
    "fr": r"de retour|de nouveau|a nouveau",
    "es": r"de vuelta|de regreso|de nuevo|nuevamente",
    "pt": r"de volta|novamente|de novo",
    "it": r"di ritorno|di nuovo|nuovamente|rientr\w*",
    "nl": r"terug|weer",
}
_INCLUSIVE_AFTER: Final = re.compile(
    r" ?\(?(?:inclusive|included|einschliesslich|inklusive|inkl\.?|inclus|incluse|compris"
    r"|incluido|incluida|inclusivo|incluso|compreso|inbegrepen)\b"
)


def _cue_patterns() -> list[tuple[re.Pattern[str], _Cue, str]]:
    patterns: list[tuple[re.Pattern[str], _Cue, str]] = []
    for table, cue in (
        (_RETURN_WORDS, _Cue.RETURN),
        (_UNTIL_INCLUSIVE_WORDS, _Cue.UNTIL_INCLUSIVE),
        (_UNTIL_WORDS, _Cue.UNTIL),
        (_FROM_WORDS, _Cue.FROM_AGAIN),
    ):
        for language, words in table.items():
            patterns.append((re.compile(rf"(?<![\w'])(?:{words})(?![\w'])"), cue, language))
    return patterns


_CUES: Final = _cue_patterns()
_AGAIN: Final = {
    language: re.compile(rf"(?<![\w'])(?:{words})(?![\w'])")
    for language, words in _AGAIN_WORDS.items()
}


@attrs.frozen
class _Stated:
    """A day and month (and maybe a year) as written."""

    day: int
    month: int
    year: int | None
    end: int


def _year(text: str | None) -> int | None:
    if not text:
        return None
    value = int(text)
    return value + 2000 if len(text) == 2 else value


def _numeric(match: re.Match[str], language: str) -> _Stated | None:
    first, second = int(match["a"]), int(match["b"])
    day, month = first, second
    if language == "en" and match["sep"] != ".":
        # English slashes: day/month in Britain, month/day in the US; only an order that a
        # number over 12 settles is believed
        if first <= 12 and second <= 12 and first != second:
            return None
        if first <= 12 < second:
            day, month = second, first
    return _Stated(day=day, month=month, year=_year(match["y"]), end=match.end())


def _date_at(text: str, position: int, language: str) -> _Stated | None:
    """The date written at ``position`` of folded ``text``, if one is."""
    if match := _ISO.match(text, position):
        return _Stated(
            day=int(match["d"]), month=int(match["m"]), year=int(match["y"]), end=match.end()
        )
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        if match := pattern.match(text, position):
            return _Stated(
                day=int(match["d"]),
                month=_MONTH_NUMBER[match["mon"]],
                year=_year(match["y"]),
                end=match.end(),
            )
    if match := _NUMERIC.match(text, position):
        return _numeric(match, language)
    return None


def _date_after(text: str, start: int, language: str, gap: int) -> _Stated | None:
    """The first date within ``gap`` characters after ``start``, before any sentence ends."""
    window_end = min(len(text), start + gap + 1)
    for found in _DATE_START.finditer(text, start, window_end):
        between = text[start : found.start()]
        if _SENTENCE_END.search(between) or _DIGIT.search(between):
            return None
        stated = _date_at(text, found.start(), language)
        if stated is not None:
            return stated
    return None


def _again_follows(text: str, end: int, language: str) -> bool:
    if text.startswith(".", end):  # the dot of "12.01." or "12. Jan." is not a full stop
        end += 1
    window = text[end : end + _AGAIN_GAP_CHARS]
    stop = re.search(r"[.!?;:,\n]", window)
    if stop is not None:
        window = window[: stop.start()]
    return _AGAIN[language].search(window) is not None


def _candidates(text: str) -> Iterator[tuple[int, int, _Stated, bool]]:
    """(trust, position, stated date, inclusive?) for every date stated as a return."""
    for pattern, cue, language in _CUES:
        for match in pattern.finditer(text):
            gap = _FROM_GAP_CHARS if cue is _Cue.FROM_AGAIN else _GAP_CHARS
            stated = _date_after(text, match.end(), language, gap)
            if stated is None:
                continue
            if cue is _Cue.FROM_AGAIN and not _again_follows(text, stated.end, language):
                continue
            inclusive = cue is _Cue.UNTIL_INCLUSIVE or (
                cue is _Cue.UNTIL and _INCLUSIVE_AFTER.match(text, stated.end) is not None
            )
            trust = _Cue.UNTIL if cue is _Cue.UNTIL_INCLUSIVE else cue
            yield int(trust), match.start(), stated, inclusive


def _resolved(stated: _Stated, reference: dt.date | None) -> dt.date | None:
    """The calendar date meant, or None when it is not a real or a believable date."""
    if stated.year is not None:
        low, high = (2000, 2099) if reference is None else (reference.year - 1, reference.year + 2)
        if not low <= stated.year <= high:
            return None
        try:
            return dt.date(stated.year, stated.month, stated.day)
        except ValueError:
            return None
    if reference is None:
        return None
    # the next occurrence is within a year, or within four for a 29 February
    for year in range(reference.year, reference.year + 5):
        try:
            candidate = dt.date(year, stated.month, stated.day)
        except ValueError:
            continue
        if candidate >= reference:
            previous = _same_day(year - 1, stated)
            if previous is not None and (reference - previous).days <= STALE_DAYS:
                return None
            return candidate
    return None


def _same_day(year: int, stated: _Stated) -> dt.date | None:
    try:
        return dt.date(year, stated.month, stated.day)
    except ValueError:
        return None


def find_return_date(text: str, *, reference: dt.date | None) -> dt.date | None:
    """The date ``text`` says its writer is back, or None when it states none.

    A date without a year is the next one on or after ``reference`` (the day the message was
    received); without a reference it is not resolved. "Until" forms that include the day
    ("through", "bis einschließlich", "tot en met", "… inclusive") give the day after.
    """
    folded = _WEEKDAYS.sub(" ", fold(text[:MAX_SEARCH_CHARS]))
    folded = re.sub(r" {2,}", " ", folded)
    ordered = sorted(_candidates(folded), key=lambda c: (c[0], c[1], not c[3]))
    for _, _, stated, inclusive in ordered:
        resolved = _resolved(stated, reference)
        if resolved is None:
            continue
        if inclusive and resolved < dt.date.max:
            return resolved + dt.timedelta(days=1)
        return resolved
    return None
