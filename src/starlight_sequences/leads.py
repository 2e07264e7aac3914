"""Leads: the people a campaign writes to."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from starlight_sequences.ids import LeadId

__all__ = ["Lead"]


def _frozen_fields(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _fields_key(value: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    # Compare and hash the read-only mapping by its items.
    return tuple(sorted(value.items()))


@attrs.frozen(kw_only=True)
class Lead:
    """A person to reach, with where they are (for business-day timing).

    Attributes:
        id: the host app's identifier of the contact.
        first_name, last_name: name fields.
        company, title: what the drafter personalises with.
        email: syntactically valid address, or None.
        linkedin_url: canonical profile URL (``https://www.linkedin.com/in/<slug>``), or None.
        country: ISO 3166-1 alpha-2 code, or None to take the campaign's default.
        subdivision: state/region code as the ``holidays`` package names it, or None.
        timezone: IANA zone name, or None to take the campaign's default (or the country's
            only zone).
        linkedin_connected: already a 1st-degree connection of the sending account.
        fields: free-form personalisation values (read-only mapping).
    """

    id: LeadId
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
