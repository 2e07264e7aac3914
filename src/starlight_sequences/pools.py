"""Sender pools: which mailbox or LinkedIn account each lead of a campaign is sent from.

A campaign may send from several identities of a channel (its pool). Each lead sticks to one
sender of each channel for its whole sequence (its email thread, its LinkedIn relation), so
the choice is made once, when the lead is enrolled, and recorded on the enrolment.

Leads are spread by *remaining capacity*: a sender whose cap has twice the room left gets
twice the leads (to within one lead). The split is a pure function of its inputs, so the same
leads and capacities always give the same assignment, and it interleaves the senders along the
lead order, so the first leads to go out are spread across the pool too.

The service measures remaining capacity (the cap minus what the sender has already booked in
its current day, or week for LinkedIn connection requests, across every campaign of the
workspace) and calls :func:`assign_senders`; this module does no I/O and reads no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from starlight_sequences.errors import InvalidSettings
from starlight_sequences.ids import LeadId, SenderId

__all__ = ["SenderCapacity", "assign_senders", "quotas"]


@attrs.frozen(kw_only=True)
class SenderCapacity:
    """One sender of a pool and the room its cap has left.

    Attributes:
        sender_id: the mailbox or LinkedIn account.
        remaining: how many more sends its cap allows in its current period (0 or more).

    Raises:
        InvalidSettings: a negative ``remaining``.
    """

    sender_id: SenderId
    remaining: int

    def __attrs_post_init__(self) -> None:
        if isinstance(self.remaining, bool) or not isinstance(self.remaining, int):
            raise InvalidSettings(f"sender {self.sender_id!r}: remaining must be a whole number")
        if self.remaining < 0:
            raise InvalidSettings(
                f"sender {self.sender_id!r}: remaining {self.remaining} is negative"
            )


def quotas(count: int, capacities: Sequence[SenderCapacity]) -> tuple[int, ...]:
    """How many of ``count`` leads each sender takes, in proportion to its remaining room.

    Largest-remainder apportionment: each sender gets ``count * remaining / total`` rounded
    down, and the leads left over go to the largest fractions (ties: the earlier sender). When
    no sender has room left, the leads are split evenly (they will wait for the next period).

    Raises:
        InvalidSettings: an empty pool with leads to place, a repeated sender id, or a negative
            count.
    """
    if count < 0:
        raise InvalidSettings(f"sender pool: lead count {count} is negative")
    if not capacities:
        if count:
            raise InvalidSettings("sender pool: no sender to assign leads to")
        return ()
    ids = [c.sender_id for c in capacities]
    if len(set(ids)) != len(ids):
        raise InvalidSettings("sender pool: a sender id appears twice")
    weights = [c.remaining for c in capacities]
    if sum(weights) == 0:
        weights = [1] * len(capacities)
    total = sum(weights)
    floors = [count * w // total for w in weights]
    left = count - sum(floors)
    # Fractions compared exactly as integers: (count * w) mod total.
    order = sorted(range(len(weights)), key=lambda i: (-(count * weights[i] % total), i))
    for index in order[:left]:
        floors[index] += 1
    return tuple(floors)


def assign_senders(
    lead_ids: Sequence[LeadId], capacities: Sequence[SenderCapacity]
) -> dict[LeadId, SenderId]:
    """Each lead's sender: counts follow :func:`quotas`, interleaved along the lead order.

    The k-th lead goes to the sender furthest behind its share of the first k leads (ties: the
    earlier sender), so every prefix of the leads is spread like the whole, and each sender
    ends with exactly its quota.

    Args:
        lead_ids: the leads, in enrolment order (each once).
        capacities: the pool's senders that take new leads, in pool order.

    Returns:
        Every lead's sender id; each lead has exactly one.

    Raises:
        InvalidSettings: a lead listed twice, or as :func:`quotas` raises.
    """
    if len(set(lead_ids)) != len(lead_ids):
        raise InvalidSettings("sender pool: a lead appears twice")
    count = len(lead_ids)
    shares = quotas(count, capacities)
    taken = [0] * len(shares)
    assignment: dict[LeadId, SenderId] = {}
    for k, lead_id in enumerate(lead_ids, start=1):
        # Deficit of sender i after k leads, times count: shares[i] * k - taken[i] * count.
        # Their sum is count > 0, and a sender at its quota has a deficit <= 0, so the pick
        # always has room and the totals come out exact.
        best = max(range(len(shares)), key=lambda i: (shares[i] * k - taken[i] * count, -i))
        taken[best] += 1
        assignment[lead_id] = capacities[best].sender_id
    return assignment
