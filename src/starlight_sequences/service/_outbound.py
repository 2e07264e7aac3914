"""The outbound builder: estimate, create (enrol and draft), and approve (reserve and
schedule) a campaign.

Owns how leads become enrolments and how an approved campaign is planned into sends. It never
sends, never applies inbound events, and changes drafts only by creating them (review edits
them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

import attrs

from starlight_sequences import shapes as _shapes
from starlight_sequences.cadence import CadenceStep, Exclusion, ExclusionReason, resolve_cadence
from starlight_sequences.calendar import BusinessCalendar, SlotRequest
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    Enrolment,
    EnrolmentStatus,
    Excluded,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
    send_id_for,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.credits import (
    CreditEstimate,
    CreditMovement,
    MovementKind,
    estimate_credits,
    send_reservations,
)
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import (
    CampaignNotFound,
    ConcurrentUpdate,
    DraftsNeedAttention,
    IllegalTransition,
    InvalidSettings,
    MissingLocation,
)
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead, locate
from starlight_sequences.planning import forecast, step_moment
from starlight_sequences.ports.storage import Changes
from starlight_sequences.reports import CreationReport
from starlight_sequences.service._drafting import ProgressCallback, draft_all
from starlight_sequences.service._pools import assign_pool
from starlight_sequences.service._shared import (
    DRAFTER_FAILED_PREFIX,
    ServiceContext,
    allocate,
    bump,
    complete_if_done,
    lead_calendar,
)
from starlight_sequences.shapes import SendShape
from starlight_sequences.unsubscribe import check_unsubscribe_target
from starlight_sequences.variants import assign_variants

_LOOKUP_BATCH = 500
"""Leads whose other enrolments one ``find_enrolments`` call looks up at creation."""


def shape_of(shape: SendShape | str) -> SendShape:
    """A shape given as itself or by its stock key."""
    return _shapes.get(shape) if isinstance(shape, str) else shape


def campaign_start(ctx: ServiceContext, campaign: Campaign) -> dt.datetime:
    """When the campaign's first steps may go out: now, or its later start."""
    now = ctx.clock.now()
    start = campaign.settings.start
    return max(now, start) if start is not None else now


class _Cadences:
    """:func:`resolve_cadence` for the leads of one campaign, each distinct cadence resolved
    once: leads reached the same way (email or not, LinkedIn or not, connected or not) get the
    same steps, so they share one tuple of them.

    With ``drop_notes`` (the LinkedIn account's notes are used up and it sends requests
    without one), connection requests carry no note.
    """

    def __init__(self, shape: SendShape, *, drop_notes: bool) -> None:
        self._shape = shape
        self._drop_notes = drop_notes
        self._steps: dict[tuple[bool, bool, bool], tuple[CadenceStep, ...]] = {}

    def steps_of(self, lead: Lead) -> tuple[CadenceStep, ...] | Exclusion:
        """The lead's steps, or why the shape cannot reach it."""
        # Exactly what resolve_cadence reads of a lead, besides the id it names.
        reach = (bool(lead.email), bool(lead.linkedin_url), lead.linkedin_connected)
        steps = self._steps.get(reach)
        if steps is not None:
            return steps
        cadence = resolve_cadence(self._shape, lead)
        if isinstance(cadence, Exclusion):
            return cadence  # names the lead: not shared
        steps = cadence.steps
        if self._drop_notes:
            steps = tuple(
                attrs.evolve(s, with_note=False) if s.action is Action.LINKEDIN_CONNECT else s
                for s in steps
            )
        self._steps[reach] = steps
        return steps


class OutboundBuilder:
    """Estimate, create and approve campaigns."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def estimate(self, shape: SendShape | str, leads: Iterable[Lead]) -> CreditEstimate:
        """The exact credits a campaign would cost (see ``CampaignService.estimate``)."""
        return estimate_credits(shape_of(shape), list(leads), self._ctx.prices)

    # -- create ---------------------------------------------------------------------------

    def create_campaign(
        self,
        workspace_id: WorkspaceId,
        *,
        name: str,
        brief: str,
        shape: SendShape | str,
        leads: Iterable[Lead],
        email_identity: EmailIdentity | None,
        linkedin_identity: LinkedInIdentity | None,
        settings: CampaignSettings | None,
        campaign_id: CampaignId | None,
        progress: ProgressCallback | None,
        email_identities: Sequence[EmailIdentity] = (),
        linkedin_identities: Sequence[LinkedInIdentity] = (),
    ) -> CreationReport:
        """Enrol leads, draft every message, and store the campaign for review."""
        # Sender pools: the single identity is the pool's first member when only a pool is given.
        email_identity = email_identity or next(iter(email_identities), None)
        linkedin_identity = linkedin_identity or next(iter(linkedin_identities), None)
        settings = settings if settings is not None else CampaignSettings()
        the_shape = shape_of(shape)
        campaign_id = campaign_id or CampaignId(f"cmp-{uuid.uuid4().hex[:12]}")
        self._check_new(workspace_id, campaign_id, brief)
        enrolments, excluded = self._enrol(
            workspace_id, campaign_id, the_shape, leads, settings, linkedin_identity
        )
        enrolments = assign_variants(the_shape, enrolments, settings.seed)  # A/B variants
        needed = {step.channel for e in enrolments for step in e.steps}
        if Channel.EMAIL in needed and email_identity is None:
            raise InvalidSettings(f"campaign {campaign_id!r}: email steps need an email_identity")
        if Channel.LINKEDIN in needed and linkedin_identity is None:
            raise InvalidSettings(
                f"campaign {campaign_id!r}: LinkedIn steps need a linkedin_identity"
            )
        campaign = Campaign(
            workspace_id=workspace_id,
            id=campaign_id,
            name=name,
            brief=brief,
            shape=the_shape,
            settings=settings,
            email_identity=email_identity,
            linkedin_identity=linkedin_identity,
            status=CampaignStatus.DRAFT,
            created_at=self._ctx.clock.now(),
            excluded=tuple(excluded),
            prices=self._ctx.prices,
            email_identities=tuple(email_identities),
            linkedin_identities=tuple(linkedin_identities),
        )
        enrolments = assign_pool(self._ctx, campaign, enrolments, campaign.created_at)
        drafts, made, charged = self._draft_and_store(campaign, enrolments, progress)
        return CreationReport(
            campaign=campaign,
            enrolled=len(enrolments),
            excluded=tuple(excluded),
            needs_attention=tuple(d for d in drafts if d.needs_attention),
            drafts=made,
            drafting_credits=charged,
        )

    def _check_new(self, workspace_id: WorkspaceId, campaign_id: CampaignId, brief: str) -> None:
        if not brief.strip():
            raise InvalidSettings(f"campaign {campaign_id!r}: the brief is empty")
        try:
            self._ctx.storage.get_campaign(workspace_id, campaign_id)
        except CampaignNotFound:
            return
        raise InvalidSettings(f"campaign {campaign_id!r} already exists in {workspace_id!r}")

    def _draft_and_store(
        self,
        campaign: Campaign,
        enrolments: Sequence[Enrolment],
        progress: ProgressCallback | None,
    ) -> tuple[list[Draft], int, int]:
        """Draft, store the campaign with its drafts, and charge: (drafts, made, charged)."""
        ctx, workspace_id = self._ctx, campaign.workspace_id
        # Hold the whole drafting cost first so a concurrent spender cannot leave us drafting
        # what we cannot pay for; then charge what was drafted and give back the rest.
        wanted = sum(1 for e in enrolments for s in e.steps if s.needs_draft)
        hold = wanted * ctx.prices.draft
        # One key per attempt: retrying a creation that failed holds and charges again.
        attempt = f"{campaign.id}:{uuid.uuid4().hex[:12]}"
        ctx.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RESERVE,
                amount=hold,
                campaign_id=campaign.id,
                key=f"draft-hold:{attempt}",
                note=f"hold for drafting {wanted} messages",
            ),
        )
        charged = 0
        try:
            drafts = draft_all(
                ctx.drafter, campaign, enrolments, max(1, ctx.draft_batch_size), progress
            )
            made = sum(1 for d in drafts if not d.problem.startswith(DRAFTER_FAILED_PREFIX))
            detail = (
                f"{len(enrolments)} leads enrolled, {len(campaign.excluded)} excluded, "
                f"{made} messages drafted"
            )
            ctx.commit(
                workspace_id,
                Changes(
                    campaigns=(campaign,),
                    enrolments=tuple(enrolments),
                    drafts=tuple(drafts),
                    activities=(
                        Activity(
                            kind=ActivityKind.DRAFTED,
                            at=campaign.created_at,
                            campaign_id=campaign.id,
                            detail=detail,
                        ),
                    ),
                ),
            )
            # Charged only once stored: a failed store gives every held credit back.
            charged = made * ctx.prices.draft
        finally:
            self._settle_drafting(workspace_id, campaign.id, attempt, hold, charged)
        return drafts, made, charged

    def _settle_drafting(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        attempt: str,
        hold: int,
        charged: int,
    ) -> None:
        self._ctx.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RELEASE,
                amount=hold,
                campaign_id=campaign_id,
                key=f"draft-unhold:{attempt}",
                note="drafting hold settled",
            ),
            CreditMovement(
                kind=MovementKind.DRAFT,
                amount=charged,
                campaign_id=campaign_id,
                key=f"draft:{attempt}",
                note=f"drafting {charged // max(self._ctx.prices.draft, 1)} messages",
            ),
        )

    def _enrol(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        shape: SendShape,
        leads: Iterable[Lead],
        settings: CampaignSettings,
        linkedin_identity: LinkedInIdentity | None,
    ) -> tuple[list[Enrolment], list[Excluded]]:
        leads = list(leads)
        keys = {lead.id for lead in leads} | {lead.email.lower() for lead in leads if lead.email}
        suppressed = self._ctx.storage.suppressed(workspace_id, keys)
        busy = (
            {}
            if settings.allow_overlap
            else self._active_elsewhere(workspace_id, campaign_id, [lead.id for lead in leads])
        )
        drop_notes = (
            linkedin_identity is not None
            and linkedin_identity.notes_exhausted
            and linkedin_identity.send_without_note_when_exhausted
        )
        cadences = _Cadences(shape, drop_notes=drop_notes)
        enrolments: list[Enrolment] = []
        excluded: list[Excluded] = []
        seen: set[str] = set()
        for lead in leads:
            identities = {lead.id, *([lead.email.lower()] if lead.email else [])}
            duplicate = bool(identities & seen)
            if not duplicate:
                seen |= identities
            outcome = self._enrolment_of(
                workspace_id,
                campaign_id,
                cadences,
                lead,
                settings,
                duplicate=duplicate,
                suppressed=bool(identities & suppressed),
                busy=busy.get(lead.id),
            )
            if isinstance(outcome, Excluded):
                excluded.append(outcome)
            else:
                enrolments.append(outcome)
        return enrolments, excluded

    def _enrolment_of(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        cadences: _Cadences,
        lead: Lead,
        settings: CampaignSettings,
        *,
        duplicate: bool,
        suppressed: bool,
        busy: CampaignId | None,
    ) -> Enrolment | Excluded:
        """One lead's enrolment, or why it is left out."""
        if duplicate:
            return Excluded(
                lead_id=lead.id,
                reason=ExclusionReason.DUPLICATE,
                message=f"lead {lead.id!r} is listed twice (same id or email); enrolled once",
            )
        if suppressed:
            return Excluded(
                lead_id=lead.id,
                reason=ExclusionReason.SUPPRESSED,
                message=f"lead {lead.id!r} is on the workspace's suppression list",
            )
        try:
            located = locate(
                lead,
                default_country=settings.default_country,
                default_timezone=settings.default_timezone,
                default_subdivision=settings.default_subdivision,
            )
        except MissingLocation as exc:
            return Excluded(
                lead_id=lead.id, reason=ExclusionReason.MISSING_LOCATION, message=str(exc)
            )
        if busy is not None:
            return Excluded(
                lead_id=lead.id,
                reason=ExclusionReason.ACTIVE_ELSEWHERE,
                message=f"lead {lead.id!r} is already active in campaign {busy!r}",
            )
        steps = cadences.steps_of(located)
        if isinstance(steps, Exclusion):
            return Excluded(lead_id=lead.id, reason=steps.reason, message=steps.message)
        return Enrolment(
            workspace_id=workspace_id, campaign_id=campaign_id, lead=located, steps=steps
        )

    def _active_elsewhere(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_ids: Sequence[LeadId]
    ) -> dict[LeadId, CampaignId]:
        """For each lead with a non-final enrolment in another live campaign of the
        workspace, the first such campaign; looked up in batches, each campaign read once."""
        storage = self._ctx.storage
        live: dict[CampaignId, bool] = {}
        busy: dict[LeadId, CampaignId] = {}
        for start in range(0, len(lead_ids), _LOOKUP_BATCH):
            batch = lead_ids[start : start + _LOOKUP_BATCH]
            for enrolment in storage.find_enrolments(workspace_id, lead_ids=batch):
                other = enrolment.campaign_id
                if other == campaign_id or enrolment.status.is_final or enrolment.lead_id in busy:
                    continue
                if other not in live:
                    live[other] = storage.get_campaign(workspace_id, other).status in (
                        CampaignStatus.DRAFT,
                        CampaignStatus.ACTIVE,
                        CampaignStatus.PAUSED,
                    )
                if live[other]:
                    busy[enrolment.lead_id] = other
        return busy

    # -- approve --------------------------------------------------------------------------

    def approve(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Reserve the send credits and schedule every recipient that is not excluded."""
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        if campaign.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
            return campaign
        if campaign.status is not CampaignStatus.DRAFT:
            raise IllegalTransition(f"campaign {campaign_id!r} is {campaign.status}")
        # Leads excluded in review, or stopped before approval (a reply, an unsubscribe),
        # are not scheduled; a lead paused or out of office is scheduled and stays held.
        enrolments = [
            e
            for e in ctx.storage.list_enrolments(workspace_id, campaign_id)
            if not e.status.is_final
        ]
        live = {e.lead_id for e in enrolments}
        bad = [
            f"{d.lead_id} step {d.step}: {d.problem}"
            for d in ctx.storage.drafts_needing_attention(workspace_id, campaign_id)
            if d.lead_id in live
        ]
        if bad:
            raise DraftsNeedAttention(campaign_id, bad)
        sends = self._plan(campaign, enrolments, campaign_start(ctx, campaign))
        self._check_unsubscribe(campaign, sends)
        approved = self._commit_approval(campaign, enrolments, sends)
        if approved is not None:
            return approved
        complete_if_done(ctx, workspace_id, campaign_id)  # every lead stopped in review
        return ctx.storage.get_campaign(workspace_id, campaign_id)

    def _check_unsubscribe(self, campaign: Campaign, sends: Sequence[ScheduledSend]) -> None:
        """Bulk email needs an unsubscribe target (RFC 8058): refuse to approve without one,
        unless the host opted out, and try the target on the first email send."""
        probe = next((s for s in sends if s.action is Action.EMAIL), None)
        if probe is None:
            return
        target = self._ctx.unsubscribe_url
        if target is None:
            if self._ctx.send_without_unsubscribe:
                return
            raise InvalidSettings(
                f"campaign {campaign.id!r} sends email but the service has no unsubscribe "
                "target: pass CampaignService(unsubscribe_url=UnsubscribeLinks(...)) (or a "
                "function returning an https URL or a mailto: address), or opt out with "
                "send_without_unsubscribe=True"
            )
        try:
            built = target(probe)
        except Exception as exc:
            raise InvalidSettings(
                f"campaign {campaign.id!r}: unsubscribe_url failed for a send: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        check_unsubscribe_target(built, subject=f"campaign {campaign.id!r}: unsubscribe_url")

    def _commit_approval(
        self, campaign: Campaign, enrolments: Sequence[Enrolment], sends: Sequence[ScheduledSend]
    ) -> Campaign | None:
        """Reserve and store the approval. Returns the campaign when another caller approved
        it meanwhile (this attempt's reservation given back), else None."""
        ctx, workspace_id, campaign_id = self._ctx, campaign.workspace_id, campaign.id
        now = ctx.clock.now()
        prices = ctx.prices_of(campaign)
        held = {e.lead_id: send_reservations(e.steps, prices) for e in enrolments}
        # A lead with a fallback reserves its most expensive path, not both (credits.py).
        cost = sum(held[s.lead_id].get(s.step, prices.price_of(s.action)) for s in sends)
        # One key per attempt: two concurrent approvals each reserve, and the one whose
        # commit loses gives back only its own reservation, never the winner's.
        hold_key = f"approve:{campaign_id}:{campaign.revision}:{uuid.uuid4().hex[:16]}"
        ctx.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RESERVE,
                amount=cost,
                campaign_id=campaign_id,
                key=hold_key,
                note=f"reserve {len(sends)} sends at approval",
            ),
        )
        started = tuple(
            bump(
                e,
                approved=True,
                status=EnrolmentStatus.ACTIVE
                if e.status is EnrolmentStatus.IN_REVIEW
                else e.status,
            )
            for e in enrolments
        )
        approval = Activity(
            kind=ActivityKind.APPROVED,
            at=now,
            campaign_id=campaign_id,
            detail=f"{len(enrolments)} recipients, {len(sends)} sends scheduled",
        )
        try:
            ctx.commit(
                workspace_id,
                Changes(
                    campaigns=(bump(campaign.approve(now)),),
                    enrolments=started,
                    sends=tuple(sends),
                    activities=(approval,),
                ),
            )
        except BaseException as exc:
            ctx.ledger.post(
                workspace_id,
                CreditMovement(
                    kind=MovementKind.RELEASE,
                    amount=cost,
                    campaign_id=campaign_id,
                    key=f"undo-{hold_key}",
                    note="approval failed; reservation returned",
                ),
            )
            if isinstance(exc, ConcurrentUpdate):
                current = ctx.storage.get_campaign(workspace_id, campaign_id)
                if current.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
                    return current  # approved meanwhile by another caller
            raise
        return None

    def _plan(
        self, campaign: Campaign, enrolments: Sequence[Enrolment], start: dt.datetime
    ) -> list[ScheduledSend]:
        # A lead's calendar, and so its earliest first moment, depends only on where it is
        # (the campaign's hours and closures are the same for all): looked up once per place.
        places: dict[tuple[str | None, ...], tuple[BusinessCalendar, dt.datetime]] = {}
        calendars: dict[LeadId, BusinessCalendar] = {}
        by_action: dict[tuple[Action, SenderId], list[SlotRequest]] = {}
        for enrolment in enrolments:
            lead = enrolment.lead
            place = (lead.country, lead.subdivision, lead.timezone)
            found = places.get(place)
            if found is None:
                calendar = lead_calendar(campaign, enrolment)
                found = places[place] = (calendar, step_moment(calendar, start, 0))
            calendar, earliest = found
            calendars[lead.id] = calendar
            first = enrolment.steps[0]
            lane = (first.action, campaign.sender_for(first.action, enrolment))  # sender pools
            by_action.setdefault(lane, []).append(
                SlotRequest(key=lead.id, earliest=earliest, calendar=calendar, follow_up=False)
            )
        slots: dict[str, dt.datetime] = {}
        for (action, sender), requests in sorted(by_action.items()):
            slots.update(allocate(self._ctx, campaign, action, requests, sender))
        sends: list[ScheduledSend] = []
        for enrolment in enrolments:
            lead_id = enrolment.lead_id
            moments = forecast(calendars[lead_id], enrolment.steps, slots[lead_id])
            for index, (step, moment) in enumerate(zip(enrolment.steps, moments, strict=True)):
                action = step.action
                sends.append(
                    ScheduledSend(
                        id=send_id_for(campaign.id, lead_id, step.number),
                        workspace_id=campaign.workspace_id,
                        campaign_id=campaign.id,
                        lead_id=lead_id,
                        step=step.number,
                        action=action,
                        sender_id=campaign.sender_for(action, enrolment),
                        due_at=moment,
                        forecast_at=moment,
                        status=SendStatus.SCHEDULED if index == 0 else SendStatus.PENDING,
                        with_note=step.with_note,
                    )
                )
        return sends
