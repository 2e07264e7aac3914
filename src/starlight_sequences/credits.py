"""Credits: prices, the estimate shown before a campaign, and the ledger's rules (pure).

Credits are integers. Drafting is charged when a draft is made (a regeneration is a new draft);
the sends of a campaign are reserved at approval, charged one by one when sent, and released
when a step will not be sent (reply, skip, cancel). ``available`` never goes below zero.

:func:`estimate_credits` resolves each lead's cadence with
:func:`~starlight_sequences.cadence.resolve_cadence`, so the estimate follows the same rules the
service charges by: one draft per step that sends drafted text, one send price per step.
A lead with a fallback branch (an email sent when its connection request is not accepted) is
reserved the most expensive of its two paths, not both: see :func:`send_reservations`.
:class:`CreditAccount` holds the rules a credit ledger applies; storage adapters journal
:class:`CreditMovement` values and fold them with :meth:`CreditAccount.apply`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

from starlight_sequences.cadence import Cadence, CadenceStep, Exclusion, resolve_cadence
from starlight_sequences.channels import Action
from starlight_sequences.errors import InsufficientCredits, InvalidInput, InvalidSettings
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape

__all__ = [
    "DEFAULT_PRICES",
    "MAX_CREDITS",
    "CreditAccount",
    "CreditEstimate",
    "CreditMovement",
    "LeadEstimate",
    "MovementKind",
    "PriceTable",
    "estimate_credits",
    "estimate_lead",
    "fallback_borrow",
    "replay",
    "send_reservations",
]


MAX_CREDITS = 2**53 - 1
"""The most credits any amount, price or balance can be: 9,007,199,254,740,991.

Every integer up to it is exact as a float and as a JSON number read by JavaScript, and a
workspace's ``available + reserved`` (which is held to it too) fits the 64-bit integer columns
of SQLite and PostgreSQL with room to spare. Past it is a typed error, never a storage
overflow."""


def _is_amount(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_CREDITS


def _shown(value: object) -> str:
    """A value for an error message (an integer of more than 40 digits by its size only:
    ``repr`` of a huge int is slow, and refused past 4,300 digits)."""
    if isinstance(value, int) and not -(10**40) < value < 10**40:
        return f"{'a negative' if value < 0 else 'an'} integer of more than 40 digits"
    return repr(value)


_RANGE = f"a whole number of credits from 0 to {MAX_CREDITS}"


def _price(instance: PriceTable, attribute: attrs.Attribute[int], value: int) -> None:
    if not _is_amount(value):
        raise InvalidSettings(
            f"price table: {attribute.name} must be {_RANGE}, not {_shown(value)}"
        )


@attrs.frozen(kw_only=True)
class PriceTable:
    """What each billable thing costs, in credits (whole numbers, zero or more).

    Attributes:
        draft: one AI-drafted message (email, LinkedIn message or connection note).
        email: sending one sequence email.
        linkedin_connect: sending one LinkedIn connection request (with or without a note).
        linkedin_message: sending one LinkedIn message.

    Raises:
        InvalidSettings: a price is negative, not an integer, or more than
            :data:`MAX_CREDITS`.
    """

    draft: int = attrs.field(default=4, validator=_price)
    email: int = attrs.field(default=2, validator=_price)
    linkedin_connect: int = attrs.field(default=2, validator=_price)
    linkedin_message: int = attrs.field(default=2, validator=_price)

    def price_of(self, action: Action) -> int:
        """The price of sending one step with that action (drafting not included)."""
        if action is Action.EMAIL:
            return self.email
        if action is Action.LINKEDIN_CONNECT:
            return self.linkedin_connect
        return self.linkedin_message


DEFAULT_PRICES = PriceTable()
"""The default prices: draft 4, email 2, LinkedIn connection request 2, LinkedIn message 2."""


@attrs.frozen(kw_only=True)
class LeadEstimate:
    """What one lead of a campaign costs at most.

    Attributes:
        lead_id: the lead.
        drafts: how many messages are drafted for it.
        drafting_cost: ``drafts`` times the draft price.
        sends: how many steps it can be sent at most (a lead with a fallback takes either the
            LinkedIn messages or the fallback email, never both).
        max_send_cost: the send prices of its most expensive path (what approval reserves;
            less is charged when a reply, a skip, a cancel or the cheaper branch stops it).
    """

    lead_id: LeadId
    drafts: int
    drafting_cost: int
    sends: int
    max_send_cost: int

    @property
    def total(self) -> int:
        """Drafting cost plus maximum send cost."""
        return self.drafting_cost + self.max_send_cost


@attrs.frozen(kw_only=True)
class CreditEstimate:
    """The credits a campaign will cost at most, per lead and in total, before anything runs.

    Attributes:
        shape_key: the shape estimated.
        prices: the price table used.
        leads: one line per reachable lead, in the order given.
        excluded: the leads the shape cannot reach (they cost nothing), with their reasons.
    """

    shape_key: str
    prices: PriceTable
    leads: tuple[LeadEstimate, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def drafts(self) -> int:
        """Messages drafted over all leads."""
        return sum(line.drafts for line in self.leads)

    @property
    def drafting_cost(self) -> int:
        """Credits charged for drafting, over all leads."""
        return sum(line.drafting_cost for line in self.leads)

    @property
    def sends(self) -> int:
        """Sends at most, over all leads."""
        return sum(line.sends for line in self.leads)

    @property
    def max_send_cost(self) -> int:
        """Credits reserved for sends at approval, over all leads."""
        return sum(line.max_send_cost for line in self.leads)

    @property
    def total(self) -> int:
        """Drafting cost plus maximum send cost, over all leads."""
        return self.drafting_cost + self.max_send_cost


def send_reservations(
    steps: Sequence[CadenceStep], prices: PriceTable = DEFAULT_PRICES
) -> dict[int, int]:
    """What approval reserves for each step of one lead, by step number.

    Every step reserves its send price, except a fallback (see ``CadenceStep.is_fallback``):
    it reserves only what its price exceeds the LinkedIn messages it replaces (the steps
    gated on the acceptance), so the lead's reservation is the most expensive of its two
    paths. When the fallback is taken, it borrows the rest from the gated steps'
    reservations (:func:`fallback_borrow`); when the connection is accepted, its own part is
    released.
    """
    gated = sum(prices.price_of(s.action) for s in steps if s.gated_on_acceptance)
    return {
        s.number: max(0, prices.price_of(s.action) - gated)
        if s.is_fallback
        else prices.price_of(s.action)
        for s in steps
    }


def fallback_borrow(
    steps: Sequence[CadenceStep], prices: PriceTable = DEFAULT_PRICES
) -> dict[int, int]:
    """How much of each gated step's reservation the fallback takes over once it is taken
    (the request declined or timed out), by step number; empty when the lead has no fallback.

    The fallback needs its price minus its own reservation (:func:`send_reservations`): that
    much is kept back from the gated steps' releases, from the first gated step on. A gated
    step skipped because the request was not accepted releases its price minus its share; the
    fallback then holds its whole price.
    """
    fallback = next((s for s in steps if s.is_fallback), None)
    if fallback is None:
        return {}
    wanted = prices.price_of(fallback.action) - send_reservations(steps, prices)[fallback.number]
    shares: dict[int, int] = {}
    for step in steps:
        if step.gated_on_acceptance:
            share = min(wanted, prices.price_of(step.action))
            shares[step.number] = share
            wanted -= share
    return shares


def estimate_lead(cadence: Cadence, prices: PriceTable = DEFAULT_PRICES) -> LeadEstimate:
    """The most one lead's cadence costs: a draft per drafted step (the fallback's too: it is
    drafted ahead like every step), the send prices of its most expensive path."""
    drafts = cadence.drafts_needed
    branch = any(step.is_fallback for step in cadence.steps)
    gated = sum(1 for step in cadence.steps if step.gated_on_acceptance)
    return LeadEstimate(
        lead_id=cadence.lead_id,
        drafts=drafts,
        drafting_cost=drafts * prices.draft,
        sends=len(cadence.steps) - (min(gated, 1) if branch else 0),
        max_send_cost=sum(send_reservations(cadence.steps, prices).values()),
    )


def estimate_credits(
    shape: SendShape, leads: Iterable[Lead], prices: PriceTable = DEFAULT_PRICES
) -> CreditEstimate:
    """The credits a campaign of ``shape`` over ``leads`` costs at most.

    Exact, not approximate: each lead's cadence is resolved with the rules the service charges
    by; a lead gets a draft per step that sends drafted text (a connection request without a
    note needs none) and a send price per step. Excluded leads cost nothing and are listed.

    Args:
        shape: the send shape.
        leads: the leads, in the order the lines should follow.
        prices: the price table (default :data:`DEFAULT_PRICES`).
    """
    lines: list[LeadEstimate] = []
    excluded: list[Exclusion] = []
    for lead in leads:
        resolved = resolve_cadence(shape, lead)
        if isinstance(resolved, Exclusion):
            excluded.append(resolved)
        else:
            lines.append(estimate_lead(resolved, prices))
    return CreditEstimate(
        shape_key=shape.key, prices=prices, leads=tuple(lines), excluded=tuple(excluded)
    )


class MovementKind(enum.StrEnum):
    """What a credit movement does to an account."""

    TOP_UP = "top_up"
    """Credits bought or granted: ``available`` grows."""
    DRAFT = "draft"
    """Drafting charged: ``available`` shrinks."""
    RESERVE = "reserve"
    """Sends reserved at approval: moves from ``available`` to ``reserved``."""
    CHARGE = "charge"
    """A reserved send was sent: ``reserved`` shrinks, for good."""
    RELEASE = "release"
    """A reserved send will not be sent: moves from ``reserved`` back to ``available``."""


def _amount(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not _is_amount(value):
        raise InvalidInput(
            f"{type(instance).__name__}: {attribute.name} must be {_RANGE}, not {_shown(value)}"
        )


@attrs.frozen(kw_only=True)
class CreditMovement:
    """One entry of a workspace's credit journal.

    Attributes:
        kind: what it does.
        amount: credits moved (0 to :data:`MAX_CREDITS`; else ``InvalidInput``).
        campaign_id: the campaign it is for, if any.
        lead_id: the lead it is for, if any.
        key: an idempotency key; a ledger posts a movement with a non-empty key at most once
            per workspace (empty: no deduplication).
        note: free text for people reading the journal.
    """

    kind: MovementKind
    amount: int = attrs.field(validator=_amount)
    campaign_id: CampaignId | None = None
    lead_id: LeadId | None = None
    key: str = ""
    note: str = ""


@attrs.frozen(kw_only=True)
class CreditAccount:
    """A workspace's credits: what it can spend, and what approved campaigns hold.

    Each method returns a new account; the account it is called on does not change.

    Attributes:
        workspace: the workspace (named in errors).
        available: credits that can be spent or reserved (never below zero).
        reserved: credits held for approved, not yet sent steps (never below zero).

    Raises:
        InvalidInput: ``available`` or ``reserved`` is negative or not an integer, or their sum
            is more than :data:`MAX_CREDITS`.
    """

    workspace: WorkspaceId
    available: int = attrs.field(default=0, validator=_amount)
    reserved: int = attrs.field(default=0, validator=_amount)

    def __attrs_post_init__(self) -> None:
        if self.available + self.reserved > MAX_CREDITS:
            raise InvalidInput(
                f"workspace {self.workspace!r}: available plus reserved must be at most "
                f"{MAX_CREDITS} credits, not {self.available + self.reserved}"
            )

    def top_up(self, amount: int) -> CreditAccount:
        """Add ``amount`` to ``available``.

        Raises:
            InvalidInput: ``amount`` is negative or not an integer, or the workspace would hold
                more than :data:`MAX_CREDITS` (``available`` plus ``reserved``).
        """
        self._check("top up", amount)
        held = self.available + self.reserved
        if amount > MAX_CREDITS - held:
            raise InvalidInput(
                f"workspace {self.workspace!r}: a top up of {amount} credits would take the "
                f"workspace past the maximum of {MAX_CREDITS} credits "
                f"({self.available} available, {self.reserved} reserved)"
            )
        return attrs.evolve(self, available=self.available + amount)

    def charge_draft(self, amount: int) -> CreditAccount:
        """Take the cost of drafting from ``available``.

        Raises:
            InsufficientCredits: fewer than ``amount`` credits are available.
            InvalidInput: ``amount`` is negative or not an integer.
        """
        self._check("draft charge", amount)
        self._require_available(amount, "drafting")
        return attrs.evolve(self, available=self.available - amount)

    def reserve(self, amount: int, *, purpose: str = "reserving sends") -> CreditAccount:
        """Move ``amount`` from ``available`` to ``reserved`` (approval of sends, or a hold
        while drafting); ``purpose`` names it in the error.

        Raises:
            InsufficientCredits: fewer than ``amount`` credits are available.
            InvalidInput: ``amount`` is negative or not an integer.
        """
        self._check("reservation", amount)
        self._require_available(amount, purpose)
        return attrs.evolve(
            self, available=self.available - amount, reserved=self.reserved + amount
        )

    def charge_reserved(self, amount: int) -> CreditAccount:
        """Consume ``amount`` of the reservation (a reserved step was sent).

        Raises:
            InvalidInput: ``amount`` is negative, not an integer, or more than is reserved.
        """
        self._check("send charge", amount)
        self._require_reserved(amount, "charge")
        return attrs.evolve(self, reserved=self.reserved - amount)

    def release(self, amount: int) -> CreditAccount:
        """Give ``amount`` of the reservation back to ``available`` (a step will not be sent).

        Raises:
            InvalidInput: ``amount`` is negative, not an integer, or more than is reserved.
        """
        self._check("release", amount)
        self._require_reserved(amount, "release")
        return attrs.evolve(
            self, available=self.available + amount, reserved=self.reserved - amount
        )

    def apply(self, movement: CreditMovement) -> CreditAccount:
        """The account after ``movement`` (the method its ``kind`` names).

        Raises:
            InsufficientCredits: a draft charge or reservation exceeds ``available``.
            InvalidInput: a charge or release exceeds ``reserved``, or a top up would take the
                account past :data:`MAX_CREDITS`.
        """
        match movement.kind:
            case MovementKind.TOP_UP:
                return self.top_up(movement.amount)
            case MovementKind.DRAFT:
                return self.charge_draft(movement.amount)
            case MovementKind.RESERVE:
                return self.reserve(movement.amount, purpose=movement.note or "reserving sends")
            case MovementKind.CHARGE:
                return self.charge_reserved(movement.amount)
            case MovementKind.RELEASE:
                return self.release(movement.amount)

    def _check(self, what: str, amount: int) -> None:
        if not _is_amount(amount):
            raise InvalidInput(
                f"workspace {self.workspace!r}: {what} amount must be {_RANGE}, "
                f"not {_shown(amount)}"
            )

    def _require_available(self, amount: int, purpose: str) -> None:
        if amount > self.available:
            raise InsufficientCredits(self.workspace, amount, self.available, purpose=purpose)

    def _require_reserved(self, amount: int, what: str) -> None:
        if amount > self.reserved:
            raise InvalidInput(
                f"workspace {self.workspace!r}: cannot {what} {amount} credits, only "
                f"{self.reserved} reserved"
            )


def replay(workspace: WorkspaceId, movements: Iterable[CreditMovement]) -> CreditAccount:
    """The account a journal of movements leads to, starting from zero.

    Raises:
        InsufficientCredits, InvalidInput: a movement cannot apply where it stands (a journal
            that a ledger following these rules wrote never raises).
    """
    account = CreditAccount(workspace=workspace)
    for movement in movements:
        account = account.apply(movement)
    return account
