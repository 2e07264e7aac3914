"""What the ``starlight`` command reads: lead files, shape files, instants and dates.

JSON files are read within limits (:data:`MAX_JSON_BYTES`, :data:`MAX_JSON_DEPTH`), so a huge
or deeply nested file is a one-line error naming the file, never a ``MemoryError`` or a
``RecursionError``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from starlight_sequences import shapes
from starlight_sequences.adapters.smtp import SMTPSecurity
from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
from starlight_sequences.errors import InvalidInput, InvalidSettings, InvalidShape, StarlightError
from starlight_sequences.leads import Lead, LeadImport, import_leads, import_leads_csv
from starlight_sequences.shapes import SendShape

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "SMTPServer",
    "lead_record",
    "parse_date",
    "parse_instant",
    "parse_smtp_url",
    "read_leads",
    "read_senders",
    "read_shape",
    "write_lead_file",
]

MAX_JSON_BYTES = 50 * 1024 * 1024
"""The largest JSON file the command reads: 50 MiB (a lead file of some 150,000 leads; parsed,
it takes several times that in memory)."""

MAX_JSON_DEPTH = 50
"""The deepest nesting of arrays and objects the command reads (a lead file needs 4 levels,
a shape file 3)."""

# A JSON string (skipped whole, so brackets inside it do not count), or one bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def read_json(path: Path, fail: Callable[[str], StarlightError]) -> Any:
    """The JSON value in the file at ``path``, read within the limits of this module.

    Args:
        path: the file.
        fail: builds the error to raise from a reason (``"not valid JSON (...)"``); the
            reason does not name the file, the error should.

    Raises:
        OSError: the file cannot be read.
        StarlightError: what ``fail`` builds, when the file is larger than
            :data:`MAX_JSON_BYTES`, not UTF-8, nested deeper than :data:`MAX_JSON_DEPTH`, or
            not valid JSON.
    """
    with path.open("rb") as handle:
        data = handle.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise fail(
            f"larger than the limit of {MAX_JSON_BYTES // (1024 * 1024)} MiB for a JSON file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise fail(
                    f"nested deeper than the limit of {MAX_JSON_DEPTH} levels of arrays and "
                    f"objects (at character {match.start()})"
                )
        elif token in ("]", "}"):
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON ({exc})") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        reason = str(exc).split(";", 1)[0]
        raise fail(f"not readable as JSON ({reason})") from None
    except RecursionError:  # the depth check above should make this unreachable
        raise fail(f"nested too deeply (limit {MAX_JSON_DEPTH} levels)") from None


def read_leads(path: Path) -> LeadImport:
    """Every good lead of a CSV file, or of a JSON lead file (a list of objects), and every
    problem (row-numbered: the CSV header is row 1; a JSON file's first object is row 1).

    Raises:
        OSError: the file cannot be read.
        InvalidInput: a JSON file that is not a list of objects, or that :func:`read_json`
            refuses (too large, too deep, not JSON).
    """
    if path.suffix.lower() == ".json":
        data = read_json(path, lambda reason: InvalidInput(f"{path}: {reason}"))
        if isinstance(data, dict) and isinstance(data.get("leads"), list):
            data = data["leads"]
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise InvalidInput(f"{path}: a JSON lead file is a list of objects, one per lead")
        return import_leads(data, first_row=1)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return import_leads_csv(handle)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def lead_record(lead: Lead) -> dict[str, Any]:
    """A lead as a JSON object that :meth:`Lead.from_mapping` reads back to an equal lead."""
    record: dict[str, Any] = {"id": lead.id}
    for name in ("first_name", "last_name", "company", "title"):
        value = getattr(lead, name)
        if value:
            record[name] = value
    for name in ("email", "linkedin_url", "country", "subdivision", "timezone"):
        value = getattr(lead, name)
        if value is not None:
            record[name] = value
    if lead.linkedin_connected:
        record["linkedin_connected"] = True
    if lead.fields:
        record["fields"] = dict(lead.fields)
    return record


def write_lead_file(path: Path, leads: tuple[Lead, ...]) -> None:
    """Write ``leads`` as a JSON lead file, atomically (a temporary file renamed into place).

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    text = json.dumps([lead_record(lead) for lead in leads], ensure_ascii=False, indent=1)
    temporary.write_text(text + "\n", encoding="utf-8")
    temporary.replace(path)


def read_shape(value: str) -> SendShape:
    """A stock shape by key, or a shape from a JSON file (a value ending in ``.json``, or an
    existing file).

    Raises:
        UnknownShape: not a stock key, and no such file.
        InvalidShape: the file is not a valid shape, or :func:`read_json` refuses it (too
            large, too deep, not JSON).
        OSError: the file cannot be read.
    """
    path = Path(value)
    if value.lower().endswith(".json") or path.is_file():
        data = read_json(path, lambda reason: InvalidShape(str(path), reason))
        if not isinstance(data, dict):
            raise InvalidShape(str(path), "a shape file holds one JSON object")
        return SendShape.from_dict(data)
    return shapes.get(value)


_MAILBOX_KEYS = {"id", "address", "name", "timezone", "daily_cap", "min_spacing_minutes"}
_ACCOUNT_KEYS = {
    "id",
    "profile_url",
    "premium",
    "timezone",
    "weekly_connect_cap",
    "daily_message_cap",
    "min_spacing_minutes",
}


def read_senders(path: Path) -> tuple[list[EmailIdentity], list[LinkedInIdentity]]:
    """The sender pools in a JSON file (``starlight create --senders``, ``docs/settings.md``)::

        {"mailboxes": [{"address": "ada@acme.example", "name": "Ada", "daily_cap": 20}],
         "linkedin_accounts": [{"id": "ada-li", "premium": true}]}

    A mailbox's id is its address unless given; ``min_spacing_minutes`` sets the spacing.

    Raises:
        InvalidSettings: naming the file and the entry (an unknown key, a wrong type, or as
            the identity's own checks refuse it).
        OSError: the file cannot be read.
    """
    data = read_json(path, lambda reason: InvalidSettings(f"sender file {path}: {reason}"))
    if not isinstance(data, dict) or set(data) - {"mailboxes", "linkedin_accounts"}:
        raise InvalidSettings(
            f"sender file {path}: one JSON object with 'mailboxes' and/or 'linkedin_accounts'"
        )
    mailboxes = [
        EmailIdentity(**_identity_fields(path, "mailboxes", i, entry, _MAILBOX_KEYS))
        for i, entry in enumerate(_entries(path, data, "mailboxes"))
    ]
    accounts = [
        LinkedInIdentity(**_identity_fields(path, "linkedin_accounts", i, entry, _ACCOUNT_KEYS))
        for i, entry in enumerate(_entries(path, data, "linkedin_accounts"))
    ]
    return mailboxes, accounts


def _entries(path: Path, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidSettings(f"sender file {path}: {key!r} must be a list of objects")
    return entries


def _identity_fields(
    path: Path, key: str, index: int, entry: dict[str, Any], allowed: set[str]
) -> dict[str, Any]:
    where = f"sender file {path}: {key}[{index}]"
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise InvalidSettings(f"{where}: unknown key(s) {', '.join(unknown)}")
    fields = dict(entry)
    if "name" in fields:
        fields["display_name"] = fields.pop("name")
    if key == "mailboxes":
        fields.setdefault("id", fields.get("address", ""))
    minutes = fields.pop("min_spacing_minutes", None)
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes < 0:
            raise InvalidSettings(f"{where}: min_spacing_minutes must be a number of at least 0")
        fields["min_spacing"] = dt.timedelta(minutes=minutes)
    for name, value in fields.items():
        wanted = bool if name == "premium" else int if name.endswith("_cap") else None
        if wanted is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidSettings(f"{where}: {name} must be a whole number of at least 1")
        if wanted is bool and not isinstance(value, bool):
            raise InvalidSettings(f"{where}: {name} must be true or false")
        if wanted is None and name != "min_spacing" and not isinstance(value, str):
            raise InvalidSettings(f"{where}: {name} must be text")
    return fields


def parse_instant(value: str) -> dt.datetime:
    """An ISO 8601 instant with its UTC offset (``2026-12-01T10:00+01:00``, ``...Z``).

    Raises:
        ValueError: not ISO 8601, or naive (no offset): the message says which.
    """
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; give one, e.g. {value}Z or {value}+01:00")
    return moment


def parse_date(value: str) -> dt.date:
    """An ISO date (``2026-12-07``).

    Raises:
        ValueError: not an ISO date.
    """
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


_WARM_UP = re.compile(r"(\d{1,6}):(\d{1,6}):(\d{1,6})")


def parse_warm_up(value: str) -> tuple[int, int, int]:
    """A warm-up ramp ``START:STEP:CEILING`` (``10:2:40``: 10 a day, 2 more each business
    day, at most 40), as three whole numbers; the ramp's own rules are checked by ``WarmUp``.

    Raises:
        ValueError: not three whole numbers separated by colons.
    """
    match = _WARM_UP.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            f"{value!r} is not START:STEP:CEILING (whole numbers, e.g. 10:2:40 for 10 emails "
            "on the first day, 2 more each business day, at most 40)"
        )
    start, step, ceiling = (int(part) for part in match.groups())
    return start, step, ceiling


_SMTP_SCHEMES = {
    "smtp": SMTPSecurity.PLAIN,
    "smtps": SMTPSecurity.SSL,
    "smtp+starttls": SMTPSecurity.STARTTLS,
}


@attrs.frozen(kw_only=True)
class SMTPServer:
    """Where ``starlight run`` sends email: what an ``smtp…://`` URL says (no password)."""

    host: str
    port: int | None
    security: SMTPSecurity
    username: str

    def __str__(self) -> str:
        scheme = next(name for name, mode in _SMTP_SCHEMES.items() if mode is self.security)
        user = f"{urllib.parse.quote(self.username, safe='')}@" if self.username else ""
        port = f":{self.port}" if self.port is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}{port}"


def parse_smtp_url(value: str) -> SMTPServer:
    """The server of ``smtp+starttls://[USER@]HOST[:PORT]`` (STARTTLS, default port 587),
    ``smtps://…`` (TLS from the first byte, 465) or ``smtp://…`` (no TLS, 25). The user name
    may be percent-encoded (``ada%40nimbus.example.com``).

    Raises:
        ValueError: another scheme, no host, a bad port, a path or query, or a password in the
            URL (a URL shows up in process listings and shell history: the password comes
            from the environment only). The message says which.
    """
    parts = urllib.parse.urlsplit(value.strip())
    security = _SMTP_SCHEMES.get(parts.scheme.lower())
    if security is None:
        raise ValueError(
            f"{_redacted(parts)} is not an SMTP URL: use smtp+starttls://HOST, smtps://HOST "
            "or smtp://HOST"
        )
    if parts.password is not None:
        raise ValueError(
            f"{_redacted(parts)} holds a password: put it in the environment variable "
            "STARLIGHT_SMTP_PASSWORD instead (a URL shows in process listings)"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{_redacted(parts)} has a port that is not a number 0-65535") from None
    if not parts.hostname:
        raise ValueError(f"{_redacted(parts)} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{_redacted(parts)}: an SMTP URL has no path, query or fragment")
    return SMTPServer(
        host=parts.hostname,
        port=port,
        security=security,
        username=urllib.parse.unquote(parts.username or ""),
    )


def _redacted(parts: urllib.parse.SplitResult) -> str:
    """The URL for an error message, its password (if any) replaced by ``***``."""
    if parts.password is None:
        return repr(parts.geturl())
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return repr(parts._replace(netloc=netloc).geturl())
