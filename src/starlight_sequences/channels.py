"""The closed sets every layer shares: channels and step actions."""

from __future__ import annotations

import enum

__all__ = ["Action", "Channel"]


class Channel(enum.StrEnum):
    """A way to reach a lead."""

    EMAIL = "email"
    LINKEDIN = "linkedin"


class Action(enum.StrEnum):
    """What a step does. The values are the names used in serialised shapes."""

    EMAIL = "email"
    """Send an email."""
    LINKEDIN_CONNECT = "linkedin_connect"
    """Send a LinkedIn connection request, with or without a note."""
    LINKEDIN_MESSAGE = "linkedin_message"
    """Send a LinkedIn message; only possible to an accepted connection."""

    @property
    def channel(self) -> Channel:
        """The channel this action goes out on."""
        return Channel.EMAIL if self is Action.EMAIL else Channel.LINKEDIN
