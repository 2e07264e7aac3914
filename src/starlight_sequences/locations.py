"""Where a recipient is: country and subdivision codes, IANA timezones.

Timezone data comes from the ``tzdata`` package (the IANA release pinned in our dependencies),
not from the operating system: OS zone files lag IANA releases by months on some machines, and
the same inputs must give the same instants everywhere. A zone missing from ``tzdata`` (a
deployment that strips it) falls back to the system database.

Country and subdivision codes are checked against the ``holidays`` package, which is also where
weekends and holidays come from.

A lead without a timezone gets its country's zone only where that is safe (``DESIGN.md`` §1.1):
the country's only IANA zone, or the principal zone of :data:`COUNTRY_ZONES` — a table, with a
reason per entry, of every country that ``zone.tab`` gives several zones.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import zoneinfo
from collections.abc import Mapping
from types import MappingProxyType

import attrs
import holidays

from starlight_sequences.errors import UnknownCountry, UnknownSubdivision, UnknownTimezone

__all__ = [
    "COUNTRY_ZONES",
    "TZDATA_VERSION",
    "CountryZone",
    "country_zone",
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


@attrs.frozen(kw_only=True)
class CountryZone:
    """The timezone a lead of a country gets when it gives none, and why.

    Attributes:
        country: the ISO 3166-1 alpha-2 code.
        zone: the IANA zone assumed, or None when none is safe to assume (the lead is then
            refused unless it, or its campaign, gives a timezone).
        reason: why, in a phrase that reads after "timezone assumed: <zone>, " or
            "no timezone derived: ".
    """

    country: str
    zone: str | None
    reason: str


def _entry(country: str, zone: str | None, reason: str) -> tuple[str, CountryZone]:
    return country, CountryZone(country=country, zone=zone, reason=reason)


# Every country that the IANA zone.tab gives more than one zone. A principal zone (the zone of
# the country's national time) is assumed only where every other zone of the country is within
# one hour of it at every moment, or where the country has one legal time (CN). The hour
# figures were computed from tzdata 2026f over 2026-2035; tests/unit/test_country_zones.py
# computes them again from the installed tzdata and fails if an entry no longer holds or a
# multi-zone country is missing.
COUNTRY_ZONES: Mapping[str, CountryZone] = MappingProxyType(
    dict(
        (
            _entry("AQ", None, "research stations on zones 16 hours apart, and no national time"),
            _entry(
                "AR",
                "America/Argentina/Buenos_Aires",
                "every zone of Argentina keeps the national time (UTC-3) all year",
            ),
            _entry(
                "AU",
                None,
                "its zones are up to 3 hours apart (Australia/Perth to Australia/Sydney)",
            ),
            _entry(
                "BR",
                None,
                "its zones are more than an hour apart (America/Rio_Branco is 2 hours behind "
                "America/Sao_Paulo)",
            ),
            _entry(
                "CA",
                None,
                "its zones are up to 4 hours apart (America/Vancouver to America/Toronto)",
            ),
            _entry(
                "CD", "Africa/Kinshasa", "the capital's zone; Africa/Lubumbashi is one hour ahead"
            ),
            _entry(
                "CL",
                None,
                "its zones are more than an hour apart (Pacific/Easter is 2 hours behind "
                "America/Santiago)",
            ),
            _entry(
                "CN",
                "Asia/Shanghai",
                "China has one legal time (Beijing time); Asia/Urumqi, 2 hours behind, is an "
                "unofficial local use in Xinjiang",
            ),
            _entry("CY", "Asia/Nicosia", "Asia/Famagusta keeps the same time all year"),
            _entry("DE", "Europe/Berlin", "Europe/Busingen keeps the same time all year"),
            _entry(
                "EC",
                "America/Guayaquil",
                "the mainland's zone; Pacific/Galapagos is one hour behind",
            ),
            _entry(
                "ES",
                "Europe/Madrid",
                "Africa/Ceuta keeps the same time and Atlantic/Canary is one hour behind all year",
            ),
            _entry(
                "FM",
                "Pacific/Pohnpei",
                "the capital's zone; Pacific/Kosrae keeps the same time and Pacific/Chuuk is one "
                "hour behind",
            ),
            _entry(
                "GL",
                None,
                "its zones are more than an hour apart (America/Thule and America/Danmarkshavn "
                "are 2 hours from America/Nuuk)",
            ),
            _entry(
                "ID",
                None,
                "its zones are more than an hour apart (Asia/Jayapura is 2 hours ahead of "
                "Asia/Jakarta)",
            ),
            _entry(
                "KI",
                None,
                "its zones are more than an hour apart (Pacific/Kiritimati is 2 hours ahead of "
                "Pacific/Tarawa)",
            ),
            _entry(
                "KZ",
                "Asia/Almaty",
                "every zone of Kazakhstan keeps the national time (UTC+5) all year",
            ),
            _entry("MH", "Pacific/Majuro", "Pacific/Kwajalein keeps the same time all year"),
            _entry(
                "MN",
                "Asia/Ulaanbaatar",
                "the capital's zone; Asia/Hovd is one hour behind all year",
            ),
            _entry(
                "MX",
                None,
                "its zones are more than an hour apart (America/Tijuana is up to 2 hours behind "
                "America/Mexico_City)",
            ),
            _entry("MY", "Asia/Kuala_Lumpur", "Asia/Kuching keeps the same time all year"),
            _entry("NZ", "Pacific/Auckland", "Pacific/Chatham is 45 minutes ahead all year"),
            _entry(
                "PF",
                "Pacific/Tahiti",
                "the capital's zone; Pacific/Marquesas is 30 minutes and Pacific/Gambier one hour "
                "ahead",
            ),
            _entry(
                "PG",
                "Pacific/Port_Moresby",
                "the capital's zone; Pacific/Bougainville is one hour ahead",
            ),
            _entry(
                "PS",
                "Asia/Hebron",
                "Asia/Gaza keeps the same time all year, so either gives the same instants",
            ),
            _entry(
                "PT",
                "Europe/Lisbon",
                "Atlantic/Madeira keeps the same time and Atlantic/Azores is one hour behind all "
                "year",
            ),
            _entry(
                "RU",
                None,
                "its zones are up to 9 hours apart (Europe/Moscow to Asia/Kamchatka)",
            ),
            _entry(
                "UA",
                "Europe/Kyiv",
                "Europe/Simferopol is at most one hour ahead all year",
            ),
            _entry(
                "UM", None, "no national time: Pacific/Midway and Pacific/Wake are 23 hours apart"
            ),
            _entry(
                "US",
                None,
                "its zones are up to 6 hours apart (America/New_York to Pacific/Honolulu)",
            ),
            _entry("UZ", "Asia/Tashkent", "Asia/Samarkand keeps the same time all year"),
        )
    )
)
"""Country code → the zone assumed for its leads without a timezone (or None), with the reason,
for every country the IANA ``zone.tab`` gives several zones (``DESIGN.md`` §1.1)."""


def country_zone(country: str) -> CountryZone | None:
    """The zone to assume for a lead of ``country`` that gives none, and why (a pure lookup).

    The country's only IANA zone; for a country with several, its entry in
    :data:`COUNTRY_ZONES` (whose ``zone`` is None where no zone is safe to assume); None when
    the zone table lists no zone for the country, or several and the table has no entry for it
    (a newer tzdata than the table knows).

    Args:
        country: an ISO 3166-1 alpha-2 code (any case).
    """
    code = country.upper()
    zones = zones_of_country(code)
    if len(zones) == 1:
        return CountryZone(country=code, zone=zones[0], reason=f"the only IANA zone of {code}")
    return COUNTRY_ZONES.get(code) if zones else None
