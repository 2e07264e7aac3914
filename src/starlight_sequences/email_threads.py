"""Which emails of a lead form one thread, and the headers a follow-up carries (pure).

By default the emails of one lead in one campaign form one thread: the first email starts it
with its drafted subject; each later email replies to it — ``In-Reply-To`` the previous
message of the thread, ``References`` every earlier one — under "Re: " and the thread's first
subject. An email step with ``new_thread`` starts a new thread with its own subject (a
genuinely new angle), and the emails after it follow that one. Anchor products (Outreach,
Apollo, lemlist, HubSpot) thread follow-ups the same way, and a reply to a threaded follow-up
names the thread, which is what makes matching replies reliable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from starlight_sequences.cadence import CadenceStep
from starlight_sequences.channels import Action

__all__ = ["ThreadHeaders", "follow_up_headers", "reply_subject", "thread_starter"]

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|vs|antw|réf|ref|r)\s*:\s*", re.IGNORECASE)
MAX_REFERENCES = 20
"""The most Message-IDs a follow-up's ``References`` names (the oldest are dropped first, but
the thread's first is always kept, as RFC 5322 suggests)."""


def thread_starter(steps: Sequence[CadenceStep], number: int) -> int | None:
    """The number of the email step that starts the thread step ``number`` belongs to (itself
    when it starts one), or None when step ``number`` is not an email of ``steps``."""
    starter: int | None = None
    for step in steps:
        if step.action is not Action.EMAIL:
            continue
        if starter is None or step.new_thread:
            starter = step.number
        if step.number == number:
            return starter
    return None


def reply_subject(first_subject: str) -> str:
    """``Re: <first subject>``, without stacking prefixes ("Re: Re: …")."""
    bare = first_subject
    while True:
        stripped = _REPLY_PREFIX.sub("", bare, count=1)
        if stripped == bare:
            break
        bare = stripped
    return f"Re: {bare.strip()}"


@attrs.frozen(kw_only=True)
class ThreadHeaders:
    """What a follow-up email carries to join its thread."""

    subject: str
    in_reply_to: str
    references: tuple[str, ...]


def follow_up_headers(first_subject: str, earlier: Sequence[str]) -> ThreadHeaders | None:
    """The headers of a follow-up whose thread began with ``first_subject`` and holds the
    Message-IDs ``earlier`` (oldest first); None when nothing of the thread was sent (the
    follow-up then starts the thread itself)."""
    ids = [message_id for message_id in earlier if message_id]
    if not ids:
        return None
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ThreadHeaders(
        subject=reply_subject(first_subject),
        in_reply_to=ids[-1],
        references=tuple(ids),
    )
