"""Leads: the people a campaign writes to.

A :class:`Lead` checks and normalises itself whenever it is constructed (also through
``attrs.evolve``): a bad field raises :class:`~starlight_sequences.errors.InvalidLead` naming the
lead and the field. Nothing here touches the network: an email address is checked for syntax
only, a LinkedIn URL for its form only.

External rows (CSV, JSON) become leads through :meth:`Lead.from_mapping`, or in bulk through
:func:`import_leads` and :func:`import_leads_csv`, which keep every good row and report every
bad one. :func:`locate` fills a lead's country and timezone from the campaign's defaults.
See ``docs/leads.md`` for the accepted formats.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import math
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Final, TextIO, TypedDict

import attrs
import holidays
import idna

from starlight_sequences.errors import (
    InvalidLead,
    MissingLocation,
    UnknownCountry,
    UnknownSubdivision,
    UnknownTimezone,
)
from starlight_sequences.header_text import (
    header_text_problem,
    identifier_problem,
    normalise_header_text,
)
from starlight_sequences.ids import LeadId
from starlight_sequences.locations import (
    country_zone,
    load_timezone,
    validate_country,
    validate_subdivision,
    zones_of_country,
)

__all__ = [
    "Lead",
    "LeadImport",
    "LeadProblem",
    "derive_lead_id",
    "import_leads",
    "import_leads_csv",
    "locate",
    "normalise_email",
]


class _Rejected(Exception):
    """A value failed a check; ``reason`` says why (the caller knows the lead and field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- email -----------------------------------------------------------------------------------

_LOCAL_MAX_OCTETS: Final = 64
_LABEL_MAX_OCTETS: Final = 63
_DOMAIN_MAX_OCTETS: Final = 253
_ADDRESS_MAX_OCTETS: Final = 254
_ATEXT: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
)
# Full stops that IDNA treats as label separators (ideographic, fullwidth, halfwidth).
_WHITESPACE: Final = re.compile(r"\s")
_DOT_VARIANTS: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _is_unicode_word_char(char: str) -> bool:
    # Letters, marks and digits: what internationalised domain labels and LinkedIn slugs use.
    return unicodedata.category(char)[0] in "LMN"


def _ascii_label(label: str) -> str:
    """The label as it travels in DNS: itself if ASCII, else its ``xn--`` punycode form."""
    if label.isascii():
        return label
    return "xn--" + label.encode("punycode").decode("ascii")


def _check_local_part(local: str) -> str:
    if not local:
        raise _Rejected("nothing before the @")
    if local.startswith('"'):
        raise _Rejected("quoted local parts are not accepted")
    local = unicodedata.normalize("NFC", local)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise _Rejected("the part before the @ has a leading, trailing or doubled dot")
    for char in local:
        if char == "." or char in _ATEXT:
            continue
        # Non-ASCII text is what SMTPUTF8 servers accept; controls and separators never are.
        if char.isascii() or unicodedata.category(char)[0] in "CZ":
            raise _Rejected(f"the part before the @ contains {char!r}")
    if len(local.encode("utf-8")) > _LOCAL_MAX_OCTETS:
        raise _Rejected(f"the part before the @ is longer than {_LOCAL_MAX_OCTETS} bytes")
    return local


# Joiners and punctuation IDNA 2008 allows in context only (Persian ZWNJ, Catalan "l·l"...):
# IDNA decides about them.
_IDNA_CONTEXTUAL: Final = frozenset("\u200c\u200d\u00b7\u0375\u05f3\u05f4\u30fb")
_LDH_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_NOT_LDH_ASCII: Final = re.compile(r"[^-.0-9A-Za-z\u0080-\U0010ffff]")


def _idna_label(label: str) -> str:
    """The A-label of a label that is not plain letters-digits-hyphens, checked by IDNA 2008.

    An ``xn--`` label must decode to a valid U-label and be that U-label's own A-label, so one
    domain has one stored form.
    """
    try:
        ascii_label = idna.alabel(label).decode("ascii")
        if ascii_label.startswith("xn--") and idna.alabel(idna.ulabel(ascii_label)) != (
            ascii_label.encode("ascii")
        ):
            raise idna.IDNAError("not the canonical A-label of its Unicode form")
    except idna.IDNAError as exc:
        raise _Rejected(f"the domain label {label!r} is not valid under IDNA 2008: {exc}") from None
    return ascii_label


def _check_label(label: str, domain: str) -> str:
    """Check one mapped label; return its ASCII form."""
    # Plain LDH labels are valid IDNA 2008 labels as they are (the common case, and fast).
    if len(label) <= _LABEL_MAX_OCTETS and _LDH_LABEL.fullmatch(label) and label[2:4] != "--":
        return label
    if not label:
        raise _Rejected(
            f"the domain {domain!r} has an empty label (a leading, trailing or doubled dot)"
        )
    for char in label:
        if char == "-" or (char.isascii() and char.isalnum()) or char in _IDNA_CONTEXTUAL:
            continue
        if char.isascii() or not _is_unicode_word_char(char):
            raise _Rejected(f"the domain contains {char!r}")
    if unicodedata.category(label[0]).startswith("M"):
        raise _Rejected(f"the domain label {label!r} starts with a combining mark")
    if label.startswith("-") or label.endswith("-"):
        raise _Rejected(f"the domain label {label!r} starts or ends with a hyphen")
    if len(_ascii_label(label)) > _LABEL_MAX_OCTETS:
        raise _Rejected(f"the domain label {label!r} is longer than {_LABEL_MAX_OCTETS} bytes")
    return _idna_label(label)


@functools.lru_cache(maxsize=4096)  # leads of one company share a domain
def _check_domain(domain: str) -> str:
    """Return the domain in its stored form: lower-case ASCII, ``xn--`` A-labels for
    internationalised labels (UTS 46 mapping, then IDNA 2008), or raise _Rejected."""
    if not domain:
        raise _Rejected("nothing after the @")
    if domain.startswith("["):
        raise _Rejected("address literals such as [192.0.2.1] are not accepted")
    # ASCII outside letters, digits, hyphens and dots first, for a message naming it.
    stray = _NOT_LDH_ASCII.search(domain)
    if stray is not None:
        raise _Rejected(f"the domain contains {stray.group()!r}")
    try:
        # UTS 46 non-transitional mapping with STD3 rules (host names): upper case and
        # full-width forms become plain lower case, NFC; "ß" stays "ß".
        mapped = idna.uts46_remap(
            domain.translate(_DOT_VARIANTS), std3_rules=True, transitional=False
        )
    except idna.IDNAError as exc:
        raise _Rejected(f"the domain {domain!r} is not valid under IDNA 2008: {exc}") from None
    labels = mapped.split(".")
    if len(labels) < 2:
        raise _Rejected(f"the domain {domain!r} has no dot (expected e.g. example.com)")
    ascii_labels = [_check_label(label, domain) for label in labels]
    ascii_domain = ".".join(ascii_labels)
    if len(ascii_domain) > _DOMAIN_MAX_OCTETS:
        raise _Rejected(f"the domain is longer than {_DOMAIN_MAX_OCTETS} bytes")
    top = ascii_labels[-1]
    if top.isdigit() or len(top) < 2:
        raise _Rejected(f"the domain {domain!r} does not end in a top-level domain")
    return ascii_domain


def _split_email(address: str) -> tuple[str, str]:
    """Return (local part, ASCII domain) of a normalised address, or raise _Rejected."""
    text = address.strip()
    if not text:
        raise _Rejected("is empty")
    if _WHITESPACE.search(text):
        raise _Rejected(f"{text!r} contains whitespace")
    at_signs = text.count("@")
    if at_signs == 0:
        raise _Rejected(f"{text!r} has no @")
    if at_signs > 1:
        raise _Rejected(f"{text!r} has more than one @")
    raw_local, raw_domain = text.split("@")
    try:
        local = _check_local_part(raw_local)
        ascii_domain = _check_domain(raw_domain)
    except _Rejected as exc:
        raise _Rejected(f"{text!r}: {exc.reason}") from None
    if len(local.encode("utf-8")) + 1 + len(ascii_domain) > _ADDRESS_MAX_OCTETS:
        raise _Rejected(f"{text!r} is longer than {_ADDRESS_MAX_OCTETS} bytes")
    return local, ascii_domain


def _normalise_email(address: str) -> str:
    local, ascii_domain = _split_email(address)
    return f"{local}@{ascii_domain}"


def _email_identity(address: str) -> str:
    """The key two addresses are "the same person" by: the stored form, case-insensitively."""
    local, ascii_domain = _split_email(address)
    return f"{local.lower()}@{ascii_domain}"


def normalise_email(address: str) -> str:
    """The stored form of an email address (a lead's, or a mailbox's): see ``docs/leads.md``.

    Surrounding whitespace is removed, the local part is kept as written (in NFC form) and the
    domain becomes lower-case ASCII: UTS 46 mapping (full-width letters, upper case), then
    IDNA 2008, with ``xn--`` A-labels for internationalised labels. Normalising a stored
    address again gives it back unchanged.

    Raises:
        InvalidLead: the address is malformed (lead ``""``, field ``"email"``), with the reason.
    """
    try:
        return _normalise_email(address)
    except _Rejected as exc:
        raise InvalidLead("", "email", exc.reason) from None


# --- LinkedIn --------------------------------------------------------------------------------

_LINKEDIN_PROFILE_PREFIX: Final = "https://www.linkedin.com/in/"
_LINKEDIN_HOST: Final = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com")
_SCHEMELESS_LINKEDIN: Final = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com/", re.IGNORECASE)
_SLUG_MIN: Final = 3
_SLUG_MAX: Final = 100
_NOT_PROFILES: Final = {
    "company": "a company page",
    "school": "a school page",
    "showcase": "a showcase page",
    "posts": "a post",
    "feed": "a feed or post",
    "pulse": "an article",
    "groups": "a group",
    "jobs": "a job listing",
    "events": "an event",
    "newsletters": "a newsletter",
    "pub": "a legacy public profile URL (open it and copy the /in/ address)",
    "sales": "a Sales Navigator page",
    "messaging": "a conversation",
    "search": "a search page",
}


def _normalise_linkedin_url(url: str) -> str:
    text = url.strip()
    if not text:
        raise _Rejected("is empty")
    if _WHITESPACE.search(text):
        raise _Rejected(f"{text!r} contains whitespace")
    if _SCHEMELESS_LINKEDIN.match(text):
        text = "https://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise _Rejected(f"{text!r} is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    if parts.username is not None or port is not None or not _LINKEDIN_HOST.fullmatch(host):
        raise _Rejected(f"{text!r} is not a linkedin.com address")
    segments = parts.path.split("/")[1:]
    section = segments[0].lower() if segments else ""
    if section != "in":
        kind = _NOT_PROFILES.get(section, "not a profile")
        raise _Rejected(f"{text!r} is {kind}, not a profile URL ({_LINKEDIN_PROFILE_PREFIX}<name>)")
    raw_slug = segments[1] if len(segments) > 1 else ""
    if not raw_slug:
        raise _Rejected(f"{text!r} has no profile name after /in/")
    try:
        slug = urllib.parse.unquote(raw_slug, errors="strict")
    except UnicodeDecodeError:
        raise _Rejected(f"{text!r}: the profile name is not valid percent-encoded UTF-8") from None
    # LinkedIn profile names are case-insensitive; one case makes duplicates visible.
    slug = unicodedata.normalize("NFC", unicodedata.normalize("NFC", slug).lower())
    for char in slug:
        if char not in "-_" and not _is_unicode_word_char(char):
            raise _Rejected(f"{text!r}: the profile name contains {char!r}")
    if not _SLUG_MIN <= len(slug) <= _SLUG_MAX:
        raise _Rejected(
            f"{text!r}: the profile name must have {_SLUG_MIN} to {_SLUG_MAX} characters"
        )
    return _LINKEDIN_PROFILE_PREFIX + urllib.parse.quote(slug, safe="-_")


# --- the lead --------------------------------------------------------------------------------


@functools.cache
def _alpha2(code: str) -> str:
    """The ISO 3166-1 alpha-2 code of a code ``validate_country`` accepted.

    The holidays package also accepts alpha-3 codes ("FRA") and a few aliases ("UK"); leads
    store the alpha-2 code, which the IANA zone table and the calendar use.
    """
    return str(holidays.country_holidays(code).country)


class _LeadValues(TypedDict):
    id: LeadId
    first_name: str
    last_name: str
    company: str
    title: str
    email: str | None
    linkedin_url: str | None
    country: str | None
    subdivision: str | None
    timezone: str | None
    linkedin_connected: bool
    fields: Mapping[str, str]


_FIELD_ORDER: Final = tuple(_LeadValues.__annotations__)


def _problem_order(problem: tuple[str, str]) -> int:
    field = problem[0]
    return _FIELD_ORDER.index(field) if field in _FIELD_ORDER else len(_FIELD_ORDER)


def _text_problem(field: str, value: object, problems: list[tuple[str, str]]) -> None:
    if not isinstance(value, str):
        problems.append((field, f"must be text, not {type(value).__name__}"))


def _id_problem(lead_id: object, problems: list[tuple[str, str]]) -> None:
    if not isinstance(lead_id, str):
        problems.append(("id", f"must be text, not {type(lead_id).__name__}"))
    elif not lead_id.strip():
        problems.append(("id", "is empty"))
    elif (unsafe := identifier_problem(lead_id)) is not None:
        problems.append(("id", f"{unsafe.reason}; an id cannot hold control characters"))


def _name(field: str, value: object, problems: list[tuple[str, str]]) -> str:
    """A name as it goes into a ``To:`` header (see ``header_text``): tidied, or a problem."""
    if not isinstance(value, str):
        problems.append((field, f"must be text, not {type(value).__name__}"))
        return ""
    unsafe = header_text_problem(value)
    if unsafe is not None:
        problems.append((field, f"{unsafe.reason}; a name must be one line of text"))
    return normalise_header_text(value)


def _optional_text(field: str, value: object, problems: list[tuple[str, str]]) -> str | None:
    """Blank means absent; anything else must be text (stripped)."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append((field, f"must be text or None, not {type(value).__name__}"))
        return None
    return value.strip() or None


def _country_reason(exc: UnknownCountry) -> str:
    return f"{exc.country!r} is not an ISO 3166-1 alpha-2 code that the holidays package supports"


def _subdivision_reason(exc: UnknownSubdivision) -> str:
    known = f"; known: {', '.join(exc.known)}" if exc.known else ""
    return f"{exc.subdivision!r} is not a subdivision of {exc.country}{known}"


def _checked(values: _LeadValues) -> tuple[_LeadValues, list[tuple[str, str]]]:
    """Return the normalised values and every (field, reason) problem found, in field order."""
    out = values.copy()
    problems: list[tuple[str, str]] = []
    _id_problem(values["id"], problems)
    out["first_name"] = _name("first_name", values["first_name"], problems)
    out["last_name"] = _name("last_name", values["last_name"], problems)
    _text_problem("company", values["company"], problems)
    _text_problem("title", values["title"], problems)

    email = _optional_text("email", values["email"], problems)
    out["email"] = email
    if email is not None:
        try:
            out["email"] = _normalise_email(email)
        except _Rejected as exc:
            problems.append(("email", exc.reason))

    url = _optional_text("linkedin_url", values["linkedin_url"], problems)
    out["linkedin_url"] = url
    if url is not None:
        try:
            out["linkedin_url"] = _normalise_linkedin_url(url)
        except _Rejected as exc:
            problems.append(("linkedin_url", exc.reason))

    country = _optional_text("country", values["country"], problems)
    country_ok = False
    if country is not None:
        try:
            country = _alpha2(validate_country(country))
            country_ok = True
        except UnknownCountry as exc:
            problems.append(("country", _country_reason(exc)))
    out["country"] = country

    subdivision = _optional_text("subdivision", values["subdivision"], problems)
    # Without a country the subdivision waits for locate(), which knows the campaign's country.
    if subdivision is not None and country is not None and country_ok:
        try:
            subdivision = validate_subdivision(country, subdivision)
        except UnknownSubdivision as exc:
            problems.append(("subdivision", _subdivision_reason(exc)))
    out["subdivision"] = subdivision

    timezone = _optional_text("timezone", values["timezone"], problems)
    if timezone is not None:
        try:
            load_timezone(timezone)
        except UnknownTimezone:
            problems.append(("timezone", f"{timezone!r} is not an IANA zone name"))
    out["timezone"] = timezone

    connected: object = values["linkedin_connected"]
    if not isinstance(connected, bool):
        problems.append(("linkedin_connected", f"must be True or False, not {connected!r}"))

    for key, value in values["fields"].items():
        if not isinstance(key, str) or not isinstance(value, str):
            problems.append(("fields", f"keys and values must be text, got {key!r}: {value!r}"))
            break
    problems.sort(key=_problem_order)
    return out, problems


def _frozen_fields(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _lead_id(value: str) -> LeadId:
    # A converter only for the type: Lead(id="ann") type-checks, and the attribute stays LeadId.
    return LeadId(value)


def _fields_key(value: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    # Compare and hash the read-only mapping by its items.
    return tuple(sorted(value.items()))


@attrs.frozen(kw_only=True)
class Lead:
    """A person to reach, with where they are (for business-day timing).

    Construction checks and normalises every field (see ``docs/leads.md``): blank optional
    text becomes None, names are tidied for the ``To:`` header (tabs become spaces, surrounding
    white space goes), the email's domain takes its lower-case ASCII (``xn--``) form, the
    LinkedIn URL its canonical form, country and subdivision their canonical codes. A lead
    needs no channel to exist: one without email and LinkedIn is excluded later by the cadence,
    with a reason.

    Attributes:
        id: the host app's identifier of the contact (non-empty, no control characters; plain
            ``str`` is accepted and typed as ``LeadId``).
        first_name, last_name: name fields; one line each, without control characters (they
            go into the ``To:`` header, see :mod:`starlight_sequences.header_text`).
        company, title: what the drafter personalises with.
        email: syntactically valid address (domain in its ASCII form), or None.
        linkedin_url: canonical profile URL (``https://www.linkedin.com/in/<slug>``), or None.
        country: ISO 3166-1 alpha-2 code, or None to take the campaign's default.
        subdivision: state/region code as the ``holidays`` package names it, or None. Without
            a country it is checked by :func:`locate` once the country is known.
        timezone: IANA zone name, or None to take the campaign's default (or the country's
            only zone, or its principal zone where that is safe: see :func:`locate`).
        linkedin_connected: already a 1st-degree connection of the sending account.
        fields: free-form personalisation values (read-only mapping).
        timezone_reason: set by :func:`locate` when it assumed ``timezone`` (the lead gave
            none): why that zone ("the campaign's default timezone", "the only IANA zone of
            FR", the reason of the :data:`~starlight_sequences.locations.COUNTRY_ZONES`
            entry); "" when the lead gave its own. Not an input: leave it out.

    Raises:
        InvalidLead: a field is invalid; the error names the lead and the field.
    """

    id: LeadId = attrs.field(converter=_lead_id)
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    title: str = ""
    email: str | None = None
    linkedin_url: str | None = None
    country: str | None = None
    subdivision: str | None = None
    timezone: str | None = None
    linkedin_connected: bool = False
    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_fields, eq=_fields_key)
    timezone_reason: str = ""

    def __attrs_post_init__(self) -> None:
        values = _LeadValues(
            id=self.id,
            first_name=self.first_name,
            last_name=self.last_name,
            company=self.company,
            title=self.title,
            email=self.email,
            linkedin_url=self.linkedin_url,
            country=self.country,
            subdivision=self.subdivision,
            timezone=self.timezone,
            linkedin_connected=self.linkedin_connected,
            fields=self.fields,
        )
        normalised, problems = _checked(values)
        if problems:
            field, reason = problems[0]
            raise InvalidLead(str(self.id), field, reason)
        # Frozen class: attrs documents object.__setattr__ as the way to normalise on init.
        object.__setattr__(self, "first_name", normalised["first_name"])
        object.__setattr__(self, "last_name", normalised["last_name"])
        object.__setattr__(self, "email", normalised["email"])
        object.__setattr__(self, "linkedin_url", normalised["linkedin_url"])
        object.__setattr__(self, "country", normalised["country"])
        object.__setattr__(self, "subdivision", normalised["subdivision"])
        object.__setattr__(self, "timezone", normalised["timezone"])

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object], *, row: int | None = None) -> Lead:
        """Build a lead from external values (a CSV row, a JSON object).

        Keys are matched case- and whitespace-insensitively against common aliases
        ("First Name", "email address", "LinkedIn", "country_code", "tz", ...; the list is in
        ``docs/leads.md``); blank values mean absent; "yes/true/1/y/on" and "no/false/0/n/off"
        or blank set ``linkedin_connected``; other keys go to ``fields`` (a nested ``fields``
        mapping is merged in). Without an id, one is derived with :func:`derive_lead_id`.

        Args:
            mapping: the row, keyed by column name.
            row: the row number, used to name the lead in errors when it has no id.

        Raises:
            InvalidLead: the first invalid field (``import_leads`` reports all of them).
        """
        parsed = _parse_row(mapping)
        if parsed.lead is not None:
            return parsed.lead
        field, reason = parsed.problems[0]
        name = (
            parsed.lead_id if parsed.lead_id is not None else ("" if row is None else f"row {row}")
        )
        raise InvalidLead(name, field, reason)


# --- ids -------------------------------------------------------------------------------------

_DERIVED_ID_PREFIX: Final = "lead-"
_DERIVED_ID_HEX: Final = 20


def derive_lead_id(*, email: str | None = None, linkedin_url: str | None = None) -> LeadId:
    """The stable id of a lead that came without one.

    It is ``"lead-"`` followed by the first 20 hex digits of the SHA-256 of
    ``"email:<address>"`` (the address with its local part lower-cased and its domain in ASCII
    ``xn--`` form) when there is an email, else of ``"linkedin:<canonical profile URL>"``. So
    re-importing the same person gives the same id, whatever the case or form of the address.

    Raises:
        InvalidLead: neither value is given (field "id"), or the one used is invalid.
    """
    if email is not None and email.strip():
        try:
            key = "email:" + _email_identity(email)
        except _Rejected as exc:
            raise InvalidLead("", "email", exc.reason) from None
    elif linkedin_url is not None and linkedin_url.strip():
        try:
            key = "linkedin:" + _normalise_linkedin_url(linkedin_url)
        except _Rejected as exc:
            raise InvalidLead("", "linkedin_url", exc.reason) from None
    else:
        raise InvalidLead("", "id", "no id, and no email or LinkedIn URL to derive one from")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return LeadId(_DERIVED_ID_PREFIX + digest[:_DERIVED_ID_HEX])


# --- from external rows ----------------------------------------------------------------------

_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "id": ("id", "lead_id", "contact_id", "external_id", "record_id"),
    "first_name": ("first_name", "firstname", "first", "given_name", "forename"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name"),
    "company": (
        "company",
        "company_name",
        "organization",
        "organisation",
        "organization_name",
        "organisation_name",
        "employer",
        "account",
        "account_name",
    ),
    "title": ("title", "job_title", "jobtitle", "position", "role"),
    "email": (
        "email",
        "e_mail",
        "email_address",
        "e_mail_address",
        "mail",
        "work_email",
        "business_email",
    ),
    "linkedin_url": (
        "linkedin",
        "linkedin_url",
        "linkedin_profile",
        "linkedin_profile_url",
        "linkedin_link",
        "linked_in",
        "linked_in_url",
        "linkedin_address",
        "profile_url",
    ),
    "country": ("country", "country_code", "country_iso", "iso_country", "country_iso_code"),
    "subdivision": (
        "subdivision",
        "subdivision_code",
        "state",
        "state_code",
        "region",
        "region_code",
        "province",
        "province_code",
    ),
    "timezone": ("timezone", "time_zone", "tz", "tz_name", "iana_timezone", "iana_time_zone"),
    "linkedin_connected": (
        "linkedin_connected",
        "connected",
        "is_connected",
        "linkedin_connection",
        "connection",
        "first_degree",
        "1st_degree",
    ),
    "fields": ("fields",),
}
_FIELD_OF_ALIAS: Final = {alias: field for field, aliases in _ALIASES.items() for alias in aliases}
_TRUE: Final = frozenset({"yes", "y", "true", "t", "1", "on", "x"})
_FALSE: Final = frozenset({"no", "n", "false", "f", "0", "off", ""})


def _header_key(name: str) -> str:
    key = name.strip().lstrip("\ufeff").strip().lower()
    return re.sub(r"[\s_.\-]+", "_", key).strip("_")


@functools.lru_cache(maxsize=1024)  # every row of a file repeats the same column names
def _field_of(column: str) -> str | None:
    return _FIELD_OF_ALIAS.get(_header_key(column))


def _cell_text(value: object) -> str:
    """A scalar cell as stripped text; raise _Rejected for lists, mappings and the like."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Data frames write blank cells as NaN and whole numbers of a column with blanks as 1.0.
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int):
        return str(value)
    raise _Rejected(f"must be text, not {type(value).__name__}")


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _cell_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Rejected(f"{text!r} is not yes/no, true/false or 1/0")


@attrs.frozen
class _ParsedRow:
    lead: Lead | None
    lead_id: LeadId | None
    derived_id: bool
    problems: tuple[tuple[str, str], ...]


def _row_id(
    texts: Mapping[str, str], problems: list[tuple[str, str]]
) -> tuple[LeadId | None, bool]:
    """A row's lead id, and whether it was derived from its email or LinkedIn URL; a row with
    neither adds its problem."""
    if "id" in texts:
        return LeadId(texts["id"]), False
    if "email" in texts or "linkedin_url" in texts:
        try:
            derived = derive_lead_id(
                email=texts.get("email"), linkedin_url=texts.get("linkedin_url")
            )
        except InvalidLead:
            return None, False  # the field check reports the invalid email or URL
        return derived, True
    problems.append(("id", "no id, and no email or LinkedIn URL to derive one from"))
    return None, False


def _parse_row(mapping: Mapping[str, object]) -> _ParsedRow:
    problems: list[tuple[str, str]] = []
    texts: dict[str, str] = {}
    sources: dict[str, str] = {}
    extra: dict[str, str] = {}
    connected = False
    for column, value in mapping.items():
        if column is None or not isinstance(column, str):
            # csv.DictReader puts cells beyond the header under the key None.
            cells = value if isinstance(value, list | tuple) else [value]
            if any(_cell_text(cell) for cell in cells if isinstance(cell, str)):
                problems.append(("row", f"has {len(cells)} cell(s) beyond the header's columns"))
            continue
        field = _field_of(column)
        if field == "fields":
            if isinstance(value, Mapping):
                for key, item in value.items():
                    try:
                        text = _cell_text(item)
                    except _Rejected as exc:
                        problems.append((str(key), exc.reason))
                        continue
                    if text:
                        extra[str(key)] = text
                continue
            field = None
        try:
            text = _cell_text(value)
            if field == "linkedin_connected":
                if text:
                    flag = _flag(value)
                    if field in sources and flag != connected:
                        raise _Rejected(f"columns {sources[field]!r} and {column!r} disagree")
                    connected = flag
                    sources[field] = column
                continue
        except _Rejected as exc:
            problems.append((field or column.strip(), exc.reason))
            continue
        if not text:
            continue
        if field is None:
            extra[column.strip()] = text
        elif field in texts and texts[field] != text:
            problems.append(
                (field, f"columns {sources[field]!r} and {column!r} give different values")
            )
        else:
            texts[field] = text
            sources[field] = column

    lead_id, derived = _row_id(texts, problems)
    values = _LeadValues(
        id=lead_id if lead_id is not None else LeadId("?"),
        first_name=texts.get("first_name", ""),
        last_name=texts.get("last_name", ""),
        company=texts.get("company", ""),
        title=texts.get("title", ""),
        email=texts.get("email"),
        linkedin_url=texts.get("linkedin_url"),
        country=texts.get("country"),
        subdivision=texts.get("subdivision"),
        timezone=texts.get("timezone"),
        linkedin_connected=connected,
        fields=extra,
    )
    _, field_problems = _checked(values)
    problems.extend(field_problems)
    problems.sort(key=_problem_order)
    if problems:
        return _ParsedRow(lead=None, lead_id=lead_id, derived_id=derived, problems=tuple(problems))
    return _ParsedRow(lead=Lead(**values), lead_id=lead_id, derived_id=derived, problems=())


# --- location --------------------------------------------------------------------------------

_CAMPAIGN_DEFAULT: Final = "campaign default"


def locate(
    lead: Lead,
    *,
    default_country: str | None,
    default_timezone: str | None,
    default_subdivision: str | None = None,
) -> Lead:
    """Return the lead with its country and timezone filled in (a pure function).

    The lead's own values win. A lead without a country takes the campaign's country and, if
    set, the campaign's timezone. A lead without a timezone then takes, in order: the campaign's
    default timezone if it belongs to the lead's country (it is the campaign's default country,
    or the zone is one of the country's zones); the country's only IANA zone (FR gives
    Europe/Paris); the country's principal zone where one is safe (DE gives Europe/Berlin, CN
    Asia/Shanghai: see :data:`~starlight_sequences.locations.COUNTRY_ZONES`); otherwise nothing
    is guessed (US, CA, AU, BR, RU, MX, ID...). An assumed zone comes with its reason in
    ``timezone_reason``. An explicit timezone is never second-guessed.
    ``default_subdivision`` applies to leads in the default country without a subdivision.

    Raises:
        MissingLocation: no country, or no timezone, can be found (field "country" or
            "timezone"), with the reason.
        InvalidLead: the lead's subdivision is not one of its (campaign) country's.
        UnknownCountry, UnknownSubdivision, UnknownTimezone: a campaign default is invalid.
    """
    campaign_country = (
        _alpha2(validate_country(default_country, subject=_CAMPAIGN_DEFAULT))
        if default_country
        else None
    )
    if default_timezone:
        load_timezone(default_timezone, subject=_CAMPAIGN_DEFAULT)
    country = lead.country or campaign_country
    if country is None:
        raise MissingLocation(
            lead.id, "country", "the lead has no country and the campaign sets no default country"
        )

    subdivision = lead.subdivision
    if subdivision is None:
        if default_subdivision and campaign_country is not None and country == campaign_country:
            subdivision = validate_subdivision(
                campaign_country, default_subdivision, subject=_CAMPAIGN_DEFAULT
            )
    elif lead.country is None:
        try:
            subdivision = validate_subdivision(country, subdivision)
        except UnknownSubdivision as exc:
            raise InvalidLead(lead.id, "subdivision", _subdivision_reason(exc)) from exc

    timezone, reason = lead.timezone, lead.timezone_reason
    if timezone is None:
        timezone, reason = _assumed_timezone(lead.id, country, campaign_country, default_timezone)
    if (country, subdivision, timezone) == (lead.country, lead.subdivision, lead.timezone):
        return lead
    return attrs.evolve(
        lead, country=country, subdivision=subdivision, timezone=timezone, timezone_reason=reason
    )


def _assumed_timezone(
    lead_id: LeadId, country: str, campaign_country: str | None, default_timezone: str | None
) -> tuple[str, str]:
    """The zone :func:`locate` assumes for a lead of ``country`` without one, and why."""
    zones = zones_of_country(country)
    if default_timezone and (country == campaign_country or default_timezone in zones):
        return default_timezone, "the campaign's default timezone"
    derived = country_zone(country)
    if derived is not None and derived.zone is not None:
        return derived.zone, derived.reason
    if derived is not None:
        why = f"no timezone of {country} is safe to assume: {derived.reason}"
    elif zones:
        listed = ", ".join(zones[:3]) + (", ..." if len(zones) > 3 else "")
        why = f"{country} has {len(zones)} timezones ({listed})"
    else:
        why = f"{country} has no timezone of its own in the IANA zone table"
    raise MissingLocation(
        lead_id,
        "timezone",
        f"the lead has no timezone and {why}; give the lead a timezone or the "
        f"campaign a default timezone for {country}",
    )


# --- batch import ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LeadProblem:
    """One reason a row of an import was not taken.

    Attributes:
        row: the row number (in a CSV as a spreadsheet shows it: the header is row 1), or None.
        lead: the lead's id (given or derived), or None when the row has none.
        field: the field at fault ("email", "country", ...); "row" for the row as a whole,
            "header" for the CSV's header; an unknown column's name for its cell.
        reason: why, in words.
    """

    row: int | None
    lead: LeadId | None
    field: str
    reason: str

    @property
    def message(self) -> str:
        """The problem as one sentence: ``row 7 (lead 'x'): email: ...``."""
        where = [f"row {self.row}"] if self.row is not None else []
        if self.lead is not None:
            where.append(f"(lead {self.lead!r})" if where else f"lead {self.lead!r}")
        prefix = " ".join(where)
        return (
            f"{prefix}: {self.field}: {self.reason}" if prefix else f"{self.field}: {self.reason}"
        )


@attrs.frozen(kw_only=True)
class LeadImport:
    """What an import produced: every good lead, in row order, and every problem.

    Attributes:
        leads: the leads to enrol, without duplicates.
        problems: the rows not taken (one entry per bad field) and header problems.
    """

    leads: tuple[Lead, ...] = ()
    problems: tuple[LeadProblem, ...] = ()


_Seen = dict[str, tuple[int, LeadId]]


def _earlier(what: str, seen: tuple[int, LeadId]) -> str:
    row, lead_id = seen
    return f"duplicate of row {row} (lead {lead_id!r}): same {what}"


class _Importer:
    """Accumulates leads and problems row by row, dropping duplicates of earlier rows."""

    def __init__(self) -> None:
        self.leads: list[Lead] = []
        self.problems: list[LeadProblem] = []
        self._ids: _Seen = {}
        self._emails: _Seen = {}
        self._profiles: _Seen = {}

    def report(self, row: int | None, lead: LeadId | None, field: str, reason: str) -> None:
        self.problems.append(LeadProblem(row=row, lead=lead, field=field, reason=reason))

    def add(
        self,
        row: int,
        mapping: Mapping[str, object],
        *,
        row_problems: Iterable[tuple[str, str]] = (),
    ) -> None:
        parsed = _parse_row(mapping)
        problems = [*row_problems, *parsed.problems]
        if parsed.lead is None or problems:
            for field, reason in problems:
                self.report(row, parsed.lead_id, field, reason)
            return
        lead = parsed.lead
        email_key = _email_identity(lead.email) if lead.email is not None else None
        duplicates: list[tuple[str, str]] = []
        if email_key is not None and email_key in self._emails:
            duplicates.append(("email", _earlier("email", self._emails[email_key])))
        if lead.linkedin_url is not None and lead.linkedin_url in self._profiles:
            duplicates.append(
                ("linkedin_url", _earlier("LinkedIn profile", self._profiles[lead.linkedin_url]))
            )
        # A derived id repeats exactly when the email or profile does: say that, not the id.
        if lead.id in self._ids and not (parsed.derived_id and duplicates):
            duplicates.insert(0, ("id", _earlier("id", self._ids[lead.id])))
        if duplicates:
            for field, reason in duplicates:
                self.report(row, lead.id, field, reason)
            return
        self._ids[lead.id] = (row, lead.id)
        if email_key is not None:
            self._emails[email_key] = (row, lead.id)
        if lead.linkedin_url is not None:
            self._profiles[lead.linkedin_url] = (row, lead.id)
        self.leads.append(lead)

    def result(self) -> LeadImport:
        return LeadImport(leads=tuple(self.leads), problems=tuple(self.problems))


def import_leads(rows: Iterable[Mapping[str, object]], *, first_row: int = 1) -> LeadImport:
    """Import leads from mappings (JSON objects, ``csv.DictReader`` rows, ...).

    Each row goes through :meth:`Lead.from_mapping`. A bad row is reported with all its bad
    fields and skipped; a row repeating the id, email (case-insensitively) or LinkedIn profile
    of an earlier row is reported as a duplicate naming that row and skipped. Every other row
    becomes a lead, so ``len(leads)`` plus the number of rows with problems is the number of
    rows. Countries and timezones are not defaulted here: see :func:`locate`.

    Args:
        rows: the rows, in order.
        first_row: the number of the first row, for the problems' ``row``.
    """
    importer = _Importer()
    for row, mapping in enumerate(rows, start=first_row):
        importer.add(row, mapping)
    return importer.result()


_DELIMITERS: Final = (",", ";", "\t", "|")
_IDENTIFYING: Final = frozenset({"id", "email", "linkedin_url"})


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count = 0
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def _guess_delimiter(header_line: str) -> str:
    counts = {delimiter: _count_outside_quotes(header_line, delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else ","


def _records(reader: Iterator[list[str]]) -> Iterator[list[str] | csv.Error]:
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


def _header_columns(header: list[str], importer: _Importer) -> list[str | None] | None:
    """The column name of each header cell (None for a blank or repeated one, reported), or
    None when no column identifies a lead (reported; nothing can be imported)."""
    columns: list[str | None] = []
    positions: dict[str, int] = {}
    for position, cell in enumerate(header, start=1):
        name = cell.strip()
        if name in positions:
            importer.report(
                1,
                None,
                "header",
                f"column {name!r} appears more than once (columns {positions[name]} and "
                f"{position}); only the first is used",
            )
            columns.append(None)
            continue
        if name:
            positions[name] = position
        columns.append(name or None)
    if not _IDENTIFYING & {_field_of(name) for name in positions}:
        found = ", ".join(repr(name) for name in positions) or "none"
        importer.report(
            1,
            None,
            "header",
            "no column for an id, an email or a LinkedIn URL, so no row can be imported "
            f"(the first row must name the columns; found: {found})",
        )
        return None
    return columns


def import_leads_csv(stream: Iterable[str] | TextIO, *, delimiter: str | None = None) -> LeadImport:
    """Import leads from CSV text: a header row naming the columns, then one lead per row.

    The caller opens the file (``newline=""`` is best, any encoding that decodes; a UTF-8
    byte-order mark is ignored). Columns are matched as :meth:`Lead.from_mapping` describes;
    the delimiter is guessed from the header (comma, semicolon, tab or bar) unless given. Rows
    are numbered as a spreadsheet shows them: the header is row 1, the first lead row 2.
    Entirely blank rows are skipped. Problems are reported as :func:`import_leads` does, plus:
    an empty CSV or a header without an id, email or LinkedIn column (nothing is imported), a
    column name repeated in the header (the first one is used), cells beyond the header's
    columns, and unreadable CSV rows.

    Args:
        stream: the CSV text, line by line (an open text file or any iterable of lines).
        delimiter: the cell separator, or None to guess it.
    """
    importer = _Importer()
    lines = iter(stream)
    first_line = next(lines, None)
    if first_line is None or not first_line.strip("\ufeff\r\n\t "):
        reason = "the CSV is empty" if first_line is None else "the first row is blank"
        importer.report(1, None, "header", f"{reason}; expected a header row naming the columns")
        return importer.result()
    first_line = first_line.removeprefix("\ufeff")
    separator = delimiter or _guess_delimiter(first_line)
    records = _records(
        csv.reader(itertools.chain([first_line], lines), delimiter=separator, strict=True)
    )

    header = next(records)
    if isinstance(header, csv.Error):
        importer.report(1, None, "header", f"the header row cannot be read as CSV: {header}")
        return importer.result()
    columns = _header_columns(header, importer)
    if columns is None:
        return importer.result()

    for row, record in enumerate(records, start=2):
        if isinstance(record, csv.Error):
            hint = (
                "a quote opened here is never closed, so the rest of the file was read as this row"
                if "unexpected end of data" in str(record)
                else "a stray quote inside a quoted value?"
            )
            importer.report(row, None, "row", f"cannot be read as CSV ({record}): {hint}")
            continue
        if not any(cell.strip() for cell in record):
            continue
        mapping = {name: cell for name, cell in zip(columns, record, strict=False) if name}
        beyond = [cell for cell in record[len(columns) :] if cell.strip()]
        row_problems = []
        if beyond:
            row_problems.append(
                (
                    "row",
                    f"has {len(beyond)} non-empty cell(s) beyond the header's {len(columns)} "
                    "columns (a delimiter inside an unquoted value?)",
                )
            )
        importer.add(row, mapping, row_problems=row_problems)
    return importer.result()
