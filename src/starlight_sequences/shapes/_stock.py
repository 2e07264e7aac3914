"""The four stock send shapes of DESIGN 1.2, with their drafting guidance."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from starlight_sequences.channels import Action
from starlight_sequences.errors import UnknownShape
from starlight_sequences.shapes._model import SendShape, Step, WaitAnchor

__all__ = ["STOCK", "get"]

_FIRST_EMAIL = (
    "One angle, one ask. Open with something specific to this person's role or company that "
    "shows why you are writing to them and not to a list. Make one point, tied to a problem "
    "they plausibly have, and end with one easy question they can answer in a line "
    "(whether it is on their radar, who owns it) rather than a request for a meeting. "
    "Plain text, under 120 words, no attachments. Subject: a few plain words, no hype, "
    "no fake 'Re:'."
)

COLD_EMAIL = SendShape(
    key="cold-email",
    name="Cold email",
    description="One email with one job: earn a reply.",
    steps=(
        Step(
            number=1,
            action=Action.EMAIL,
            wait_days=0,
            guidance=(
                "A single cold email whose one job is to earn a reply; there is no follow-up, "
                "so it must stand on its own. " + _FIRST_EMAIL
            ),
        ),
    ),
)

EMAIL_SEQUENCE = SendShape(
    key="email-sequence",
    name="Email sequence",
    description="Three emails over about a week and a half, each follow-up with a new angle.",
    steps=(
        Step(
            number=1,
            action=Action.EMAIL,
            wait_days=0,
            guidance="First of three emails. " + _FIRST_EMAIL,
        ),
        Step(
            number=2,
            action=Action.EMAIL,
            wait_days=3,
            guidance=(
                "Follow-up, three business days after the first email, which got no reply. "
                "Take a genuinely new angle, not a bump: no 'just following up', 'bumping this "
                "up' or 'did you see my last email'. Do not restate the first email's point; "
                "bring a different reason to care (another problem, a concrete result, a "
                "relevant example from their industry). One angle, one ask, and the ask at "
                "least as easy as the first. Shorter than the first email."
            ),
        ),
        Step(
            number=3,
            action=Action.EMAIL,
            wait_days=4,
            guidance=(
                "Last email of the sequence, four business days after the follow-up. Again a "
                "genuinely new angle, not a bump, different from both earlier emails. Say "
                "plainly that this is the last note, with no guilt-tripping, and make the "
                "easiest ask yet (a yes/no, or who the right person would be). Leave the door "
                "open. Three or four sentences."
            ),
        ),
    ),
)

EMAIL_LINKEDIN = SendShape(
    key="email-linkedin",
    name="Email + LinkedIn",
    description=(
        "An email, then a LinkedIn connection request, then a LinkedIn message once they accept."
    ),
    steps=(
        Step(
            number=1,
            action=Action.EMAIL,
            wait_days=0,
            guidance="Opening email; a LinkedIn request follows later. " + _FIRST_EMAIL,
        ),
        Step(
            number=2,
            action=Action.LINKEDIN_CONNECT,
            wait_days=2,
            with_note=False,
            guidance=(
                "Connection request without a note, two business days after the email. "
                "Nothing is drafted for this step."
            ),
        ),
        Step(
            number=3,
            action=Action.LINKEDIN_MESSAGE,
            wait_days=1,
            counts_from=WaitAnchor.CONNECTION_ACCEPTED,
            guidance=(
                "First LinkedIn message, one business day after they accepted the connection "
                "request. Thank them for connecting in a few words, once. Take a new angle "
                "rather than repeating the email (they may not have read it; never write 'as "
                "per my email'). Conversational, two to four short sentences, one question that "
                "is easy to answer in a chat. No links, no attachments, no calendar invite."
            ),
        ),
    ),
)

LINKEDIN_NOTE = SendShape(
    key="linkedin-note",
    name="LinkedIn note",
    description="One LinkedIn connection request with a short note that reads like a peer.",
    steps=(
        Step(
            number=1,
            action=Action.LINKEDIN_CONNECT,
            wait_days=0,
            with_note=True,
            guidance=(
                "Connection request note of at most 300 characters (LinkedIn's limit). Write "
                "like a peer, not a pitch: one specific, genuine reason to connect (their "
                "work, a shared field, something they wrote or built). No product, no ask for "
                "a call, no links, no flattery. One or two sentences, signed with a first "
                "name only."
            ),
        ),
    ),
)

STOCK: Mapping[str, SendShape] = MappingProxyType(
    {shape.key: shape for shape in (COLD_EMAIL, EMAIL_SEQUENCE, EMAIL_LINKEDIN, LINKEDIN_NOTE)}
)
"""The stock shapes, read-only, keyed by ``SendShape.key``."""


def get(key: str) -> SendShape:
    """The stock shape with that key.

    Args:
        key: one of ``cold-email``, ``email-sequence``, ``email-linkedin``, ``linkedin-note``.

    Raises:
        UnknownShape: no stock shape has that key; the error lists the known keys.
    """
    try:
        return STOCK[key]
    except (KeyError, TypeError):
        raise UnknownShape(str(key), STOCK) from None
