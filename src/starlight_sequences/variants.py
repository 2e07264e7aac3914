"""A/B variants of a step: the even split of leads, per-variant results, the Wilson interval
and the winner rule (pure: no I/O, no clock).

A step with :attr:`~starlight_sequences.shapes.Step.variants` is an A/B test. At creation
:func:`assign_variants` splits the leads the step reaches evenly among its variants
(:func:`split_evenly`: the same leads and seed give the same split, whatever order the leads
come in; the counts differ by at most one), and each lead's cadence step carries its variant's
key and guidance, so the lead is drafted, charged and sent like any other.

:func:`variant_results` counts, per variant, what was sent, replied to and bounced;
:func:`wilson_interval` gives the 95% confidence interval of a reply rate; and
:func:`pick_winner` applies a step's :class:`~starlight_sequences.shapes.WinnerRule`.
:func:`leads_to_switch` names the leads that then move to the winner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence

import attrs

from starlight_sequences.campaigns import Enrolment, EnrolmentStatus, ScheduledSend, SendStatus
from starlight_sequences.errors import InvalidInput
from starlight_sequences.ids import LeadId
from starlight_sequences.shapes import SendShape, Step

__all__ = [
    "Z_95",
    "VariantResult",
    "assign_variants",
    "leads_to_switch",
    "pick_winner",
    "split_evenly",
    "variant_results",
    "wilson_interval",
]

Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""


def _rank(seed: str, step: int, lead_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{step}\x00{lead_id}".encode()).digest()


def split_evenly(
    lead_ids: Iterable[LeadId], keys: Sequence[str], *, seed: str, step: int
) -> dict[LeadId, str]:
    """Each lead's variant: the leads in a seeded pseudo-random order, dealt round-robin.

    The order is that of ``sha256(seed, step, lead id)`` (ties, which do not happen in
    practice, by lead id), so the split depends only on the set of leads, the keys, the seed and
    the step: not on the order the leads are given in, nor on the run. The first keys get the
    extra leads when the count does not divide evenly; two variants' counts differ by at most 1.

    Args:
        lead_ids: the leads the step reaches (duplicates count once).
        keys: the step's variant keys, in the shape's order (at least one).
        seed: the campaign's seed (``CampaignSettings.seed``); another seed, another split.
        step: the step's number, so two A/B steps of a shape split independently.

    Raises:
        InvalidInput: ``keys`` is empty.
    """
    if not keys:
        raise InvalidInput(f"step {step}: no variant keys to split leads among")
    order = sorted(set(lead_ids), key=lambda lead: (_rank(seed, step, lead), lead))
    return {lead: keys[index % len(keys)] for index, lead in enumerate(order)}


def assign_variants(
    shape: SendShape, enrolments: Sequence[Enrolment], seed: str
) -> list[Enrolment]:
    """The enrolments with every A/B step of their cadence on its variant.

    For each step of ``shape`` with variants, the leads whose cadence drafts that step are
    split with :func:`split_evenly`; each one's cadence step gets ``variant`` (the key) and
    ``guidance`` (:meth:`Step.guidance_for`). A lead whose cadence dropped the step, or sends
    it without drafted text (a connection request whose note was dropped), is not counted.
    """
    out = list(enrolments)
    for step in shape.steps:
        if not step.variants:
            continue
        reached = [
            e.lead_id
            for e in out
            if any(s.number == step.number and s.needs_draft for s in e.steps)
        ]
        split = split_evenly(reached, step.variant_keys, seed=seed, step=step.number)
        out = [_on_variant(e, step, split.get(e.lead_id)) for e in out]
    return out


def _on_variant(enrolment: Enrolment, step: Step, key: str | None) -> Enrolment:
    if key is None:
        return enrolment
    return attrs.evolve(
        enrolment,
        steps=tuple(
            attrs.evolve(s, variant=key, guidance=step.guidance_for(key))
            if s.number == step.number
            else s
            for s in enrolment.steps
        ),
    )


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: ``(low, high)``, both within ``[0, 1]``.

    With no trials nothing is known: ``(0.0, 1.0)``.

    Args:
        successes: replies (0 to ``trials``).
        trials: sends.
        z: the normal quantile; :data:`Z_95` for a 95% interval.

    Raises:
        InvalidInput: the counts are negative, not whole numbers, or ``successes > trials``.
    """
    for name, value in (("successes", successes), ("trials", trials)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInput(f"wilson_interval: {name} must be a whole number >= 0")
    if successes > trials:
        raise InvalidInput(f"wilson_interval: successes ({successes}) exceed trials ({trials})")
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@attrs.frozen(kw_only=True)
class VariantResult:
    """How one variant of an A/B step is doing.

    Attributes:
        step: the step's number.
        key: the variant's key.
        leads: leads on the variant now (after a pick, the winner's include the leads moved
            to it).
        sent: leads the step was sent to on this variant.
        replied: of those, leads that replied (or booked a meeting) afterwards.
        bounced: leads whose send of this step failed for good, or that hard-bounced with this
            step as their last send.
        winner: the variant was picked by the step's winner rule.
    """

    step: int
    key: str
    leads: int
    sent: int
    replied: int
    bounced: int
    winner: bool = False

    @property
    def reply_rate(self) -> float:
        """``replied / sent`` (0.0 before any send)."""
        return self.replied / self.sent if self.sent else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of the reply rate (see :func:`wilson_interval`)."""
        return wilson_interval(self.replied, self.sent)


_REPLIED = frozenset({EnrolmentStatus.REPLIED, EnrolmentStatus.MEETING_BOOKED})


def variant_results(
    shape: SendShape,
    enrolments: Iterable[Enrolment],
    sends: Iterable[ScheduledSend],
    winners: Mapping[int, str] | None = None,
) -> tuple[VariantResult, ...]:
    """Per A/B step of ``shape`` and per variant (in the shape's order), what happened.

    Args:
        shape: the campaign's shape.
        enrolments: the campaign's enrolments (their cadence steps carry the variant).
        sends: the campaign's sends.
        winners: step number → the key its winner rule picked, if any.
    """
    winners = winners or {}
    by_send = {(s.lead_id, s.step): s for s in sends}
    latest_sent: dict[LeadId, int] = {}
    for send in by_send.values():
        if send.status is SendStatus.SENT:
            latest_sent[send.lead_id] = max(latest_sent.get(send.lead_id, 0), send.step)
    counts: dict[tuple[int, str], list[int]] = {
        (step.number, key): [0, 0, 0, 0] for step in shape.steps for key in step.variant_keys
    }
    for enrolment in enrolments:
        for cadence_step in enrolment.steps:
            row = counts.get((cadence_step.number, cadence_step.variant))
            if row is None:
                continue
            row[0] += 1
            its_send = by_send.get((enrolment.lead_id, cadence_step.number))
            if its_send is None:
                continue
            if its_send.status is SendStatus.FAILED:
                row[3] += 1
            elif its_send.status is SendStatus.SENT:
                row[1] += 1
                row[2] += enrolment.status in _REPLIED
                row[3] += (
                    enrolment.status is EnrolmentStatus.BOUNCED
                    and latest_sent.get(enrolment.lead_id) == cadence_step.number
                )
    return tuple(
        VariantResult(
            step=number,
            key=key,
            leads=row[0],
            sent=row[1],
            replied=row[2],
            bounced=row[3],
            winner=winners.get(number) == key,
        )
        for (number, key), row in counts.items()
    )


def pick_winner(
    step: Step,
    results: Iterable[VariantResult],
    *,
    sent_at: Iterable[dt.datetime] = (),
    now: dt.datetime | None = None,
) -> str | None:
    """The variant the step's winner rule picks at ``now``, or None (no rule, too few sends,
    or too soon after them).

    Once the step's sends over all variants reach ``step.winner.after_sends`` and
    ``after_days`` days have passed since the send that reached that count, the winner is the
    variant with the highest lower bound of its 95% Wilson interval; ties go to the higher
    reply rate, then to the variant listed first in the shape.

    Args:
        step: the A/B step.
        results: its results (:func:`variant_results`; other steps' rows are ignored).
        sent_at: when the step's sends went out (any order); needed when ``after_days > 0``.
        now: the moment of the decision (aware); needed when ``after_days > 0``.
    """
    rule = step.winner
    if rule is None or not step.variants:
        return None
    mine = {r.key: r for r in results if r.step == step.number}
    if sum(r.sent for r in mine.values()) < rule.after_sends:
        return None
    if rule.after_days:
        times = sorted(sent_at)
        if now is None or len(times) < rule.after_sends:
            return None
        if now < times[rule.after_sends - 1] + dt.timedelta(days=rule.after_days):
            return None
    order = {key: index for index, key in enumerate(step.variant_keys)}
    ranked = sorted(
        (r for r in mine.values() if r.key in order),
        key=lambda r: (-r.interval[0], -r.reply_rate, order[r.key]),
    )
    return ranked[0].key if ranked else None


_NOT_REACHED = frozenset({SendStatus.PENDING, SendStatus.WAITING, SendStatus.SCHEDULED})


def leads_to_switch(
    step: int,
    winner: str,
    enrolments: Iterable[Enrolment],
    sends: Iterable[ScheduledSend],
) -> list[Enrolment]:
    """The enrolments a pick moves to ``winner``: still running, on another variant of
    ``step``, and not yet reached by it (its send not claimed, sent, skipped or failed)."""
    status = {(s.lead_id, s.step): s.status for s in sends}
    out: list[Enrolment] = []
    for enrolment in enrolments:
        if enrolment.status.is_final:
            continue
        current = next((s for s in enrolment.steps if s.number == step), None)
        if current is None or not current.variant or current.variant == winner:
            continue
        if status.get((enrolment.lead_id, step), SendStatus.PENDING) in _NOT_REACHED:
            out.append(enrolment)
    return out
