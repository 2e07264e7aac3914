"""Where a recipient is: country and subdivision codes, IANA timezones.

Timezone data comes from the ``tzdata`` package (the IANA release pinned in our dependencies),
not from the operating system: OS zone files lag IANA releases by months on some machines, and
the same inputs must give the same instants everywhere. A zone missing from ``tzdata`` (a
deployment that strips it) falls back to the system database.

Country and subdivision codes are checked against the ``holidays`` package, which is also where
weekends and holidays come from.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import zoneinfo
from collections.abc import Mapping

import holidays

from starlight_sequences.errors import UnknownCountry, UnknownSubdivision, UnknownTimezone

__all__ = [
    "TZDATA_VERSION",
    "load_timezone",
    "validate_country",
    "validate_subdivision",
    "zones_of_country",
]


def _tzdata_version() -> str:
    try:
        # tzdata ships no type information; read its one attribute dynamically.
        return str(importlib.import_module("tzdata").IANA_VERSION)
    except ImportError:  # pragma: no cover - tzdata is a dependency
        return "system"


TZDATA_VERSION: str = _tzdata_version()
"""The IANA release the library computes instants with (``"system"`` without ``tzdata``)."""


@functools.cache
def _supported() -> Mapping[str, tuple[str, ...]]:
    return {code: tuple(subdivs) for code, subdivs in holidays.list_supported_countries().items()}


@functools.cache
def _subdivision_aliases(country: str) -> Mapping[str, str]:
    cls = holidays.registry.COUNTRIES.get(country)
    aliases: dict[str, str] = {}
    for code in _supported()[country]:
        aliases[code.upper()] = code
    if cls is not None:
        entity = holidays.country_holidays(country)
        for alias, code in getattr(entity, "subdivisions_aliases", {}).items():
            aliases[str(alias).upper()] = str(code)
    return aliases


def validate_country(country: str, *, subject: str = "calendar") -> str:
    """Return the canonical (upper-case) ISO 3166-1 alpha-2 code.

    Raises:
        UnknownCountry: the ``holidays`` package has no calendar for it.
    """
    code = country.strip().upper()
    if code not in _supported():
        raise UnknownCountry(country, subject=subject)
    return code


def validate_subdivision(country: str, subdivision: str, *, subject: str = "calendar") -> str:
    """Return the canonical subdivision code of ``country`` (case-insensitive; aliases accepted).

    Args:
        country: a code already checked by :func:`validate_country`.
        subdivision: a code or alias as the ``holidays`` package names it ("CA", "BY").
        subject: who the value belongs to, for the error message.

    Raises:
        UnknownSubdivision: the country has no such subdivision.
    """
    code = _subdivision_aliases(country).get(subdivision.strip().upper())
    if code is None:
        raise UnknownSubdivision(country, subdivision, _supported()[country], subject=subject)
    return code


@functools.cache
def _load_zone(name: str) -> zoneinfo.ZoneInfo:
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts):
        raise zoneinfo.ZoneInfoNotFoundError(name)
    try:
        resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*parts)
        with resource.open("rb") as stream:
            return zoneinfo.ZoneInfo.from_file(stream, key=name)
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError, ValueError):
        return zoneinfo.ZoneInfo(name)


def load_timezone(name: str, *, subject: str = "calendar") -> zoneinfo.ZoneInfo:
    """Return the zone named ``name`` from the library's IANA data (see module docs).

    The same name always gives the same (cached) object.

    Raises:
        UnknownTimezone: not an IANA zone name.
    """
    try:
        return _load_zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownTimezone(name, subject=subject) from exc


@functools.cache
def _zone_table() -> Mapping[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    try:
        text = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - tzdata is a dependency
        return {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        columns = line.split("\t")
        table.setdefault(columns[0], []).append(columns[2])
    return {country: tuple(zones) for country, zones in table.items()}


def zones_of_country(country: str) -> tuple[str, ...]:
    """The IANA zones in use in ``country`` (from the IANA ``zone.tab``), possibly empty."""
    return _zone_table().get(country.upper(), ())
