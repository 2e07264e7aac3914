"""The zone a lead without a timezone gets from its country (DESIGN §1.1), checked against the
installed tzdata: each principal zone of ``COUNTRY_ZONES`` is within one hour of every other
zone of its country at every moment of 2026-2035 (or the country has one legal time), each
refusal names a country whose zones lie further apart, and no multi-zone country is missing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from starlight_sequences.errors import MissingLocation
from starlight_sequences.leads import Lead, locate
from starlight_sequences.locations import (
    COUNTRY_ZONES,
    _zone_table,
    country_zone,
    load_timezone,
    zones_of_country,
)

ONE_LEGAL_TIME = {"CN"}
"""Countries whose principal zone is assumed because the law sets one time, though a zone of
``zone.tab`` lies further than an hour from it (DESIGN §1.1)."""

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _offsets(zones: tuple[str, ...], moment: dt.datetime) -> tuple[dt.timedelta, ...]:
    return tuple(moment.astimezone(load_timezone(z)).utcoffset() or dt.timedelta() for z in zones)


def _moments(zones: tuple[str, ...]) -> Iterator[dt.datetime]:
    """Every moment at which the offsets of ``zones`` can differ from the moments around it:
    one a week, and every half hour of a week in which any offset changes."""
    week = dt.timedelta(days=7)
    moment = START
    while moment < END:
        yield moment
        if _offsets(zones, moment) != _offsets(zones, moment + week):
            step = moment
            while step < moment + week:
                step += dt.timedelta(minutes=30)
                yield step
        moment += week


def _furthest(principal: str, zones: tuple[str, ...]) -> dt.timedelta:
    """The largest distance, over 2026-2035, between ``principal`` and another zone."""
    worst = dt.timedelta()
    for moment in _moments(zones):
        offsets = dict(zip(zones, _offsets(zones, moment), strict=True))
        for zone in zones:
            worst = max(worst, abs(offsets[zone] - offsets[principal]))
    return worst


def _multi_zone_countries() -> list[str]:
    return sorted(country for country, zones in _zone_table().items() if len(zones) > 1)


def test_every_country_with_several_zones_has_an_entry_and_only_those() -> None:
    assert set(COUNTRY_ZONES) == set(_multi_zone_countries())


@pytest.mark.parametrize("country", sorted(c for c, e in COUNTRY_ZONES.items() if e.zone))
def test_a_principal_zone_is_within_an_hour_of_every_other_zone_all_year(country: str) -> None:
    entry = COUNTRY_ZONES[country]
    assert entry.zone in zones_of_country(country)
    assert entry.country == country
    assert entry.reason
    furthest = _furthest(entry.zone or "", zones_of_country(country))
    if country in ONE_LEGAL_TIME:
        assert furthest > HOUR, f"{country} no longer needs the one-legal-time exception"
        assert "one legal time" in entry.reason
    else:
        assert furthest <= HOUR, f"{country}: a zone is {furthest} from {entry.zone}"


@pytest.mark.parametrize("country", sorted(c for c, e in COUNTRY_ZONES.items() if not e.zone))
def test_no_zone_is_derived_where_zones_differ_by_more_than_an_hour(country: str) -> None:
    zones = zones_of_country(country)
    assert COUNTRY_ZONES[country].reason
    # Some moment of 2026-2035 has two zones of the country more than an hour apart.
    assert any(
        max(offsets) - min(offsets) > HOUR
        for offsets in (_offsets(zones, moment) for moment in _moments(zones))
    ), country


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("DE", "Europe/Berlin"),
        ("ES", "Europe/Madrid"),
        ("PT", "Europe/Lisbon"),
        ("CN", "Asia/Shanghai"),
        ("NZ", "Pacific/Auckland"),
        ("AR", "America/Argentina/Buenos_Aires"),
        ("FR", "Europe/Paris"),
        ("JP", "Asia/Tokyo"),
    ],
)
def test_a_lead_without_timezone_gets_the_safe_zone_of_its_country_with_the_reason(
    country: str, zone: str
) -> None:
    located = locate(Lead(id="ann", country=country), default_country=None, default_timezone=None)
    assert located.timezone == zone
    entry = country_zone(country)
    assert entry is not None
    assert located.timezone_reason == entry.reason


@pytest.mark.parametrize("country", ["US", "CA", "AU", "BR", "RU", "MX", "ID"])
def test_no_timezone_is_derived_for_countries_whose_zones_differ_by_more(country: str) -> None:
    entry = COUNTRY_ZONES[country]
    assert entry.zone is None
    with pytest.raises(MissingLocation) as caught:
        locate(Lead(id="ann", country=country), default_country=None, default_timezone=None)
    assert caught.value.field == "timezone"
    assert entry.reason in caught.value.reason


def test_a_lead_s_own_timezone_carries_no_reason() -> None:
    own = Lead(id="ann", country="DE", timezone="Europe/Busingen")
    located = locate(own, default_country=None, default_timezone=None)
    assert located == own
    assert located.timezone_reason == ""


def test_the_campaign_default_timezone_is_named_as_the_reason() -> None:
    located = locate(Lead(id="ann"), default_country="US", default_timezone="America/Chicago")
    assert (located.timezone, located.timezone_reason) == (
        "America/Chicago",
        "the campaign's default timezone",
    )


def test_a_single_zone_country_gives_its_zone_as_the_reason() -> None:
    entry = country_zone("fr")
    assert entry is not None
    assert (entry.zone, entry.reason) == ("Europe/Paris", "the only IANA zone of FR")
    assert country_zone("XK") is None
