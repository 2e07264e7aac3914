"""The application service: every use case, driven through the ports.

A host app builds one :class:`CampaignService` from its adapters and calls it. The service
loads, decides with the pure core, stores, and calls the senders; it reads the time only from
its :class:`~starlight_sequences.ports.Clock`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs

from starlight_sequences import shapes as _shapes
from starlight_sequences.cadence import CadenceStep, Exclusion, resolve_cadence
from starlight_sequences.calendar import (
    BusinessCalendar,
    SenderLimits,
    SlotRequest,
    allocate_slots,
)
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
    StopScope,
    send_id_for,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.credits import (
    CreditAccount,
    CreditEstimate,
    CreditMovement,
    MovementKind,
    PriceTable,
    estimate_credits,
)
from starlight_sequences.drafts import ChannelLimits, Draft, DraftStatus, draft_problems
from starlight_sequences.errors import (
    CampaignNotFound,
    ConcurrentUpdate,
    DraftNotFound,
    DraftsNeedAttention,
    IllegalTransition,
    InvalidDraft,
    InvalidEvent,
    InvalidSettings,
    LeaseLost,
    MissingLocation,
    UnknownContact,
)
from starlight_sequences.events import Activity, ActivityKind, EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.leads import Lead, locate
from starlight_sequences.planning import calendar_for, forecast, step_moment
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.drafter import (
    DraftedMessage,
    Drafter,
    DraftFailure,
    DraftRequest,
    EarlierTouch,
)
from starlight_sequences.ports.senders import (
    EmailSender,
    LinkedInAction,
    LinkedInSender,
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.reports import (
    CampaignCredits,
    CampaignPreview,
    CampaignStatusReport,
    ContactStatus,
    CreationReport,
    DispatchReport,
    PlannedStep,
    RecipientPreview,
    WaitingOnConnection,
)
from starlight_sequences.shapes import SendShape, WaitAnchor
from starlight_sequences.timeline import (
    LeadStepState,
    Timeline,
    timeline_of_lead,
    timeline_of_shape,
)

__all__ = [
    "CampaignCredits",
    "CampaignPreview",
    "CampaignService",
    "CampaignStatusReport",
    "ContactStatus",
    "CreationReport",
    "DispatchReport",
    "PlannedStep",
    "ProgressCallback",
    "RecipientPreview",
    "WaitingOnConnection",
]

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while drafting: messages drafted so far, and in all."""

_ACTION_LABEL = {
    Action.EMAIL: "Email",
    Action.LINKEDIN_CONNECT: "LinkedIn connection request",
    Action.LINKEDIN_MESSAGE: "LinkedIn message",
}


_Record = TypeVar("_Record", Campaign, Enrolment, ScheduledSend)


def _contact_keys(lead: Lead) -> set[str]:
    """How a contact appears on a suppression list: its id and its email address."""
    return {lead.id, *([lead.email.lower()] if lead.email else [])}


def _send_activity(
    kind: ActivityKind, send: ScheduledSend, at: dt.datetime, detail: str
) -> Activity:
    """The journal line of something that happened to one send."""
    return Activity(
        kind=kind,
        at=at,
        campaign_id=send.campaign_id,
        lead_id=send.lead_id,
        step=send.step,
        detail=detail,
    )


_RETRIES = 5
_OPEN_UNCLAIMED = frozenset({SendStatus.PENDING, SendStatus.WAITING, SendStatus.SCHEDULED})


def _bump(record: _Record, **changes: Any) -> _Record:
    """The record with ``changes`` applied and its revision bumped (see ports.Changes)."""
    return attrs.evolve(record, revision=record.revision + 1, **changes)


class CampaignService:
    """Creates, reviews, approves, runs and reports campaigns through the ports.

    Args:
        storage: where state lives (in-memory, SQLite, PostgreSQL, or the host's own).
        ledger: the credit ledger.
        drafter: drafts messages (``TemplateDrafter`` offline, or an LLM).
        clock: the only source of "now".
        email_sender: sends emails (needed to dispatch email steps).
        linkedin_sender: performs LinkedIn actions (needed to dispatch LinkedIn steps).
        prices: the credit price table.
        draft_batch_size: messages per drafter call.
        unsubscribe_url: builds the ``List-Unsubscribe`` target of an email send.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        ledger: CreditLedger,
        drafter: Drafter,
        clock: Clock,
        email_sender: EmailSender | None = None,
        linkedin_sender: LinkedInSender | None = None,
        prices: PriceTable | None = None,
        draft_batch_size: int = 50,
        unsubscribe_url: Callable[[ScheduledSend], str] | None = None,
    ) -> None:
        self.email_sender = email_sender
        self.linkedin_sender = linkedin_sender
        self.unsubscribe_url = unsubscribe_url
        self.storage = storage
        self.ledger = ledger
        self.drafter = drafter
        self.clock = clock
        self.prices = prices if prices is not None else PriceTable()
        self.draft_batch_size = max(1, draft_batch_size)

    # -- estimate -------------------------------------------------------------------------

    def estimate(self, shape: SendShape | str, leads: Iterable[Lead]) -> CreditEstimate:
        """The exact credits a campaign would cost: drafting plus the maximum send cost.

        Uses the same cadence rules the service charges by. Excluded leads cost nothing.
        """
        return estimate_credits(self._shape(shape), list(leads), self.prices)

    @staticmethod
    def _shape(shape: SendShape | str) -> SendShape:
        return _shapes.get(shape) if isinstance(shape, str) else shape

    # -- create ---------------------------------------------------------------------------

    def create_campaign(
        self,
        workspace_id: WorkspaceId,
        *,
        name: str,
        brief: str,
        shape: SendShape | str,
        leads: Iterable[Lead],
        email_identity: EmailIdentity | None = None,
        linkedin_identity: LinkedInIdentity | None = None,
        settings: CampaignSettings | None = None,
        campaign_id: CampaignId | None = None,
        progress: ProgressCallback | None = None,
    ) -> CreationReport:
        """Enrol leads, draft every message, and store the campaign for review.

        Nothing is scheduled or sent: that takes :meth:`approve`. Leads that cannot be enrolled
        are excluded with a reason (no channel for the shape, no location, suppressed, active
        in another campaign, listed twice); the rest are enrolled.

        Raises:
            InsufficientCredits: the workspace cannot pay for the drafts; nothing is stored.
            InvalidSettings: the campaign id exists, the brief is empty, or an identity the
                cadences need is missing.
            InvalidShape, UnknownShape: a bad shape.
        """
        settings = settings if settings is not None else CampaignSettings()
        the_shape = self._shape(shape)
        now = self.clock.now()
        campaign_id = campaign_id or CampaignId(f"cmp-{uuid.uuid4().hex[:12]}")
        if not brief.strip():
            raise InvalidSettings(f"campaign {campaign_id!r}: the brief is empty")
        try:
            self.storage.get_campaign(workspace_id, campaign_id)
        except CampaignNotFound:
            pass
        else:
            raise InvalidSettings(f"campaign {campaign_id!r} already exists in {workspace_id!r}")

        enrolments, excluded = self._enrol(
            workspace_id, campaign_id, the_shape, leads, settings, linkedin_identity
        )
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
            created_at=now,
            excluded=tuple(excluded),
            prices=self.prices,
        )
        # Hold the whole drafting cost first so a concurrent spender cannot leave us drafting
        # what we cannot pay for; then charge what was drafted and give back the rest.
        wanted = sum(1 for e in enrolments for s in e.steps if s.needs_draft)
        hold = wanted * self.prices.draft
        # One key per attempt: retrying a creation that failed holds and charges again.
        attempt = f"{campaign_id}:{uuid.uuid4().hex[:12]}"
        self.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RESERVE,
                amount=hold,
                campaign_id=campaign_id,
                key=f"draft-hold:{attempt}",
                note=f"hold for drafting {wanted} messages",
            ),
        )
        charged = 0
        try:
            drafts = self._draft_all(campaign, enrolments, progress)
            made = sum(1 for d in drafts if not d.problem.startswith(_DRAFTER_FAILED_PREFIX))
            self.storage.commit(
                workspace_id,
                Changes(
                    campaigns=(campaign,),
                    enrolments=tuple(enrolments),
                    drafts=tuple(drafts),
                    activities=(
                        Activity(
                            kind=ActivityKind.DRAFTED,
                            at=now,
                            campaign_id=campaign_id,
                            detail=f"{len(enrolments)} leads enrolled, {len(excluded)} excluded, "
                            f"{made} messages drafted",
                        ),
                    ),
                ),
            )
            # Charged only once stored: a failed store gives every held credit back.
            charged = made * self.prices.draft
        finally:
            self._settle_drafting(workspace_id, campaign_id, attempt, hold, charged)
        return CreationReport(
            campaign=campaign,
            enrolled=len(enrolments),
            excluded=tuple(excluded),
            needs_attention=tuple(d for d in drafts if d.needs_attention),
            drafts=made,
            drafting_credits=charged,
        )

    def _settle_drafting(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        attempt: str,
        hold: int,
        charged: int,
    ) -> None:
        self.ledger.post(
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
                note=f"drafting {charged // max(self.prices.draft, 1)} messages",
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
        suppressed = self.storage.suppressed(workspace_id, keys)
        drop_notes = (
            linkedin_identity is not None
            and linkedin_identity.notes_exhausted
            and linkedin_identity.send_without_note_when_exhausted
        )
        enrolments: list[Enrolment] = []
        excluded: list[Excluded] = []
        seen: set[str] = set()
        for lead in leads:
            identities = {lead.id, *([lead.email.lower()] if lead.email else [])}
            if identities & seen:
                excluded.append(
                    Excluded(
                        lead_id=lead.id,
                        reason="duplicate",
                        message=f"lead {lead.id!r} is listed twice (same id or email); "
                        "enrolled once",
                    )
                )
                continue
            seen |= identities
            if identities & suppressed:
                excluded.append(
                    Excluded(
                        lead_id=lead.id,
                        reason="suppressed",
                        message=f"lead {lead.id!r} is on the workspace's suppression list",
                    )
                )
                continue
            try:
                located = locate(
                    lead,
                    default_country=settings.default_country,
                    default_timezone=settings.default_timezone,
                    default_subdivision=settings.default_subdivision,
                )
            except MissingLocation as exc:
                excluded.append(
                    Excluded(lead_id=lead.id, reason="missing_location", message=str(exc))
                )
                continue
            if not settings.allow_overlap:
                busy = self._active_elsewhere(workspace_id, campaign_id, lead.id)
                if busy is not None:
                    excluded.append(
                        Excluded(
                            lead_id=lead.id,
                            reason="active_elsewhere",
                            message=f"lead {lead.id!r} is already active in campaign {busy!r}",
                        )
                    )
                    continue
            cadence = resolve_cadence(shape, located)
            if isinstance(cadence, Exclusion):
                excluded.append(
                    Excluded(lead_id=lead.id, reason=cadence.reason.value, message=cadence.message)
                )
                continue
            steps = cadence.steps
            if drop_notes:
                steps = tuple(
                    attrs.evolve(s, with_note=False) if s.action is Action.LINKEDIN_CONNECT else s
                    for s in steps
                )
            enrolments.append(
                Enrolment(
                    workspace_id=workspace_id,
                    campaign_id=campaign_id,
                    lead=located,
                    steps=steps,
                )
            )
        return enrolments, excluded

    def _active_elsewhere(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> CampaignId | None:
        for enrolment in self.storage.find_enrolments(workspace_id, lead_id=lead_id):
            if enrolment.campaign_id == campaign_id or enrolment.status.is_final:
                continue
            campaign = self.storage.get_campaign(workspace_id, enrolment.campaign_id)
            if campaign.status in (
                CampaignStatus.DRAFT,
                CampaignStatus.ACTIVE,
                CampaignStatus.PAUSED,
            ):
                return campaign.id
        return None

    # -- drafting -------------------------------------------------------------------------

    def _limits(self, campaign: Campaign, action: Action) -> ChannelLimits:
        identity = campaign.linkedin_identity
        return ChannelLimits.for_action(
            action, premium_linkedin=identity.premium if identity is not None else False
        )

    def _sender_name(self, campaign: Campaign, action: Action) -> str:
        if action is Action.EMAIL and campaign.email_identity is not None:
            return campaign.email_identity.display_name
        return ""

    def _request(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        step: CadenceStep,
        earlier: Sequence[Draft],
    ) -> DraftRequest:
        index = enrolment.steps.index(step) + 1
        return DraftRequest(
            key=f"{enrolment.lead_id}:{step.number}",
            brief=campaign.brief,
            guidance=step.guidance,
            step=step.number,
            step_index=index,
            step_count=len(enrolment.steps),
            limits=self._limits(campaign, step.action),
            lead=enrolment.lead,
            sender_name=self._sender_name(campaign, step.action),
            earlier=tuple(
                EarlierTouch(
                    step=d.step,
                    action_label=_ACTION_LABEL[d.action],
                    subject=d.subject,
                    body=d.body,
                )
                for d in earlier
                if d.body
            ),
        )

    def _to_draft(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        step: CadenceStep,
        result: DraftedMessage | DraftFailure,
        version: int = 1,
    ) -> Draft:
        base = {
            "campaign_id": campaign.id,
            "lead_id": enrolment.lead_id,
            "step": step.number,
            "action": step.action,
            "version": version,
        }
        if isinstance(result, DraftFailure):
            return Draft(
                subject=None,
                body="",
                status=DraftStatus.NEEDS_ATTENTION,
                problem=f"{_DRAFTER_FAILED_PREFIX}: {result.reason}",
                **base,  # type: ignore[arg-type]
            )
        return self._checked_draft(
            campaign,
            Draft(subject=result.subject, body=result.body, status=DraftStatus.READY, **base),  # type: ignore[arg-type]
        )

    def _checked_draft(self, campaign: Campaign, draft: Draft) -> Draft:
        problems = list(
            draft_problems(draft.subject, draft.body, self._limits(campaign, draft.action))
        )
        identity = campaign.linkedin_identity
        if (
            draft.action is Action.LINKEDIN_CONNECT
            and identity is not None
            and identity.notes_exhausted
        ):
            problems.append("the LinkedIn account's monthly quota of connection notes is used up")
        if problems:
            return attrs.evolve(
                draft, status=DraftStatus.NEEDS_ATTENTION, problem="; ".join(problems)
            )
        return attrs.evolve(draft, status=DraftStatus.READY, problem="")

    def _draft_all(
        self,
        campaign: Campaign,
        enrolments: Sequence[Enrolment],
        progress: ProgressCallback | None,
    ) -> list[Draft]:
        total = sum(1 for e in enrolments for s in e.steps if s.needs_draft)
        done = 0
        if progress is not None:
            progress(0, total)
        drafts: dict[LeadId, list[Draft]] = {e.lead_id: [] for e in enrolments}
        depth = max((len(e.steps) for e in enrolments), default=0)
        for index in range(depth):
            work = [
                (e, e.steps[index])
                for e in enrolments
                if index < len(e.steps) and e.steps[index].needs_draft
            ]
            for start in range(0, len(work), self.draft_batch_size):
                batch = work[start : start + self.draft_batch_size]
                requests = [self._request(campaign, e, s, drafts[e.lead_id]) for e, s in batch]
                results = self.drafter.draft(requests)
                if len(results) != len(requests):
                    raise InvalidSettings(
                        f"drafter returned {len(results)} results for {len(requests)} requests"
                    )
                for (enrolment, step), result in zip(batch, results, strict=True):
                    drafts[enrolment.lead_id].append(
                        self._to_draft(campaign, enrolment, step, result)
                    )
                done += len(batch)
                if progress is not None:
                    progress(done, total)
        return [d for per_lead in drafts.values() for d in per_lead]

    # -- review ---------------------------------------------------------------------------

    def preview(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId | None = None
    ) -> CampaignPreview:
        """Every recipient's cadence, drafts and planned dates (local and UTC), and the leads
        left out with their reasons. Before approval the dates are a forecast from now (or the
        campaign's start); after, they are the scheduled instants."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        enrolments = self.storage.list_enrolments(workspace_id, campaign_id)
        if lead_id is not None:
            enrolments = [e for e in enrolments if e.lead_id == lead_id]
        drafts: dict[tuple[LeadId, int], Draft] = {
            (d.lead_id, d.step): d
            for d in self.storage.list_drafts(workspace_id, campaign_id, lead_id)
        }
        sends: dict[tuple[LeadId, int], ScheduledSend] = {
            (s.lead_id, s.step): s
            for s in self.storage.list_sends(workspace_id, campaign_id, lead_id)
        }
        start = self._start(campaign)
        recipients = []
        for enrolment in enrolments:
            calendar = calendar_for(
                enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
            )
            planned: list[dt.datetime] | None = None
            if not sends:
                planned = forecast(calendar, enrolment.steps, step_moment(calendar, start, 0))
            rows = []
            for index, step in enumerate(enrolment.steps):
                send = sends.get((enrolment.lead_id, step.number))
                due = send.due_at if send is not None else (planned[index] if planned else None)
                if send is not None and send.status is SendStatus.SENT:
                    due = send.sent_at
                rows.append(
                    PlannedStep(
                        step=step.number,
                        action=step.action,
                        draft=drafts.get((enrolment.lead_id, step.number)),
                        due_utc=due,
                        due_local=due.astimezone(calendar.zone) if due is not None else None,
                        status=send.status if send is not None else None,
                        gated=step.gated_on_acceptance,
                        reason=send.reason if send is not None else "",
                    )
                )
            recipients.append(
                RecipientPreview(
                    lead=enrolment.lead,
                    status=enrolment.status,
                    approved=enrolment.approved,
                    reason=enrolment.reason,
                    steps=tuple(rows),
                )
            )
        return CampaignPreview(
            campaign=campaign, recipients=tuple(recipients), excluded=campaign.excluded
        )

    def _start(self, campaign: Campaign) -> dt.datetime:
        now = self.clock.now()
        start = campaign.settings.start
        return max(now, start) if start is not None else now

    def _draft(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId, step: int
    ) -> Draft:
        for draft in self.storage.list_drafts(workspace_id, campaign_id, lead_id):
            if draft.step == step:
                return draft
        raise DraftNotFound(f"campaign {campaign_id!r} has no draft for {lead_id!r} step {step}")

    def _require_draft_status(self, campaign: Campaign) -> None:
        if campaign.status is not CampaignStatus.DRAFT:
            raise IllegalTransition(
                f"campaign {campaign.id!r} is {campaign.status}; drafts change only in review"
            )

    def edit_draft(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId,
        step: int,
        *,
        subject: str | None = None,
        body: str | None = None,
    ) -> Draft:
        """Replace a draft's subject and/or body; the result is validated again.

        Raises:
            InvalidDraft: the edit breaks the channel's rules; the stored draft is unchanged.
            IllegalTransition: the campaign is no longer in review.
        """
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        self._require_draft_status(campaign)
        current = self._draft(workspace_id, campaign_id, lead_id, step)
        edited = attrs.evolve(
            current,
            subject=subject if subject is not None else current.subject,
            body=body if body is not None else current.body,
            version=current.version + 1,
            edited=True,
        )
        checked = self._checked_draft(campaign, edited)
        if checked.needs_attention:
            raise InvalidDraft(
                f"campaign {campaign_id!r} lead {lead_id!r} step {step}", "draft", checked.problem
            )
        self.storage.commit(workspace_id, Changes(drafts=(checked,)))
        return checked

    def regenerate_draft(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId, step: int
    ) -> Draft:
        """Draft one message again (charged as a draft). A failure is stored as needing
        attention, like any failed draft.

        Raises:
            InsufficientCredits: nothing is drafted.
        """
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        self._require_draft_status(campaign)
        current = self._draft(workspace_id, campaign_id, lead_id, step)
        enrolment = self.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        cadence_step = next(s for s in enrolment.steps if s.number == step)
        earlier = [
            d for d in self.storage.list_drafts(workspace_id, campaign_id, lead_id) if d.step < step
        ]
        key = f"redraft:{campaign_id}:{lead_id}:{step}:{uuid.uuid4().hex[:12]}"
        self.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RESERVE,
                amount=self._prices_of(campaign).draft,
                campaign_id=campaign_id,
                lead_id=lead_id,
                key=f"hold-{key}",
            ),
        )
        charged = 0
        try:
            request = self._request(campaign, enrolment, cadence_step, earlier)
            result = self.drafter.draft([request])[0]
            draft = self._to_draft(campaign, enrolment, cadence_step, result, current.version + 1)
            self.storage.commit(workspace_id, Changes(drafts=(draft,)))
            charged = 0 if isinstance(result, DraftFailure) else self._prices_of(campaign).draft
        finally:
            self._settle_redraft(
                workspace_id, campaign_id, lead_id, step, key, charged, self._prices_of(campaign)
            )
        return draft

    def _settle_redraft(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId,
        step: int,
        key: str,
        charged: int,
        prices: PriceTable,
    ) -> None:
        self.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RELEASE,
                amount=prices.draft,
                campaign_id=campaign_id,
                lead_id=lead_id,
                key=f"unhold-{key}",
            ),
            CreditMovement(
                kind=MovementKind.DRAFT,
                amount=charged,
                campaign_id=campaign_id,
                lead_id=lead_id,
                key=key,
                note=f"regenerated draft of step {step}",
            ),
        )

    def exclude_recipient(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId,
        reason: str = "excluded by the reviewer",
    ) -> Enrolment:
        """Leave a recipient out of the campaign (before approval)."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        self._require_draft_status(campaign)
        enrolment = self.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        updated = _bump(enrolment, status=EnrolmentStatus.EXCLUDED, reason=reason, approved=False)
        self.storage.commit(workspace_id, Changes(enrolments=(updated,)))
        return updated

    def approve_recipient(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """Mark one recipient as reviewed. Raises ``DraftsNeedAttention`` if one of its
        drafts needs attention."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        self._require_draft_status(campaign)
        enrolment = self.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        bad = [
            f"{d.lead_id} step {d.step}: {d.problem}"
            for d in self.storage.list_drafts(workspace_id, campaign_id, lead_id)
            if d.needs_attention
        ]
        if bad:
            raise DraftsNeedAttention(campaign_id, bad)
        updated = _bump(enrolment, approved=True, status=EnrolmentStatus.IN_REVIEW)
        self.storage.commit(workspace_id, Changes(enrolments=(updated,)))
        return updated

    # -- approve --------------------------------------------------------------------------

    def approve(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Approve the campaign: reserve the send credits and schedule every recipient that is
        not excluded. Approving an approved campaign changes nothing.

        Raises:
            DraftsNeedAttention: a recipient that is not excluded has a draft needing attention.
            InsufficientCredits: the send credits cannot be reserved; nothing is scheduled.
            IllegalTransition: the campaign was cancelled or completed.
        """
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        if campaign.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
            return campaign
        if campaign.status is not CampaignStatus.DRAFT:
            raise IllegalTransition(f"campaign {campaign_id!r} is {campaign.status}")
        # Leads excluded in review, or stopped before approval (a reply, an unsubscribe),
        # are not scheduled; a lead paused or out of office is scheduled and stays held.
        enrolments = [
            e
            for e in self.storage.list_enrolments(workspace_id, campaign_id)
            if not e.status.is_final
        ]
        live = {e.lead_id for e in enrolments}
        bad = [
            f"{d.lead_id} step {d.step}: {d.problem}"
            for d in self.storage.list_drafts(workspace_id, campaign_id)
            if d.needs_attention and d.lead_id in live
        ]
        if bad:
            raise DraftsNeedAttention(campaign_id, bad)
        now = self.clock.now()
        sends = self._plan(campaign, enrolments, self._start(campaign))
        prices = self._prices_of(campaign)
        cost = sum(prices.price_of(s.action) for s in sends)
        # One key per attempt: two concurrent approvals each reserve, and the one whose
        # commit loses gives back only its own reservation, never the winner's.
        hold_key = f"approve:{campaign_id}:{campaign.revision}:{uuid.uuid4().hex[:16]}"
        self.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RESERVE,
                amount=cost,
                campaign_id=campaign_id,
                key=hold_key,
                note=f"reserve {len(sends)} sends at approval",
            ),
        )
        approved = _bump(campaign.approve(now))
        try:
            self.storage.commit(
                workspace_id,
                Changes(
                    campaigns=(approved,),
                    enrolments=tuple(
                        _bump(
                            e,
                            approved=True,
                            status=EnrolmentStatus.ACTIVE
                            if e.status is EnrolmentStatus.IN_REVIEW
                            else e.status,
                        )
                        for e in enrolments
                    ),
                    sends=tuple(sends),
                    activities=(
                        Activity(
                            kind=ActivityKind.APPROVED,
                            at=now,
                            campaign_id=campaign_id,
                            detail=f"{len(enrolments)} recipients, {len(sends)} sends scheduled",
                        ),
                    ),
                ),
            )
        except BaseException as exc:
            self.ledger.post(
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
                current = self.storage.get_campaign(workspace_id, campaign_id)
                if current.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
                    return current  # approved meanwhile by another caller
            raise
        self._complete_if_done(workspace_id, campaign_id)  # every lead stopped in review
        return self.storage.get_campaign(workspace_id, campaign_id)

    def _limits_for(self, campaign: Campaign, action: Action) -> SenderLimits:
        if action is Action.EMAIL:
            mailbox = campaign.email_identity
            assert mailbox is not None
            return SenderLimits(
                min_spacing=mailbox.min_spacing,
                daily_cap=mailbox.daily_cap,
                weekly_cap=None,
                timezone=mailbox.timezone,
            )
        account = campaign.linkedin_identity
        assert account is not None
        if action is Action.LINKEDIN_CONNECT:
            return SenderLimits(
                min_spacing=account.min_spacing,
                daily_cap=None,
                weekly_cap=account.weekly_connect_cap,
                timezone=account.timezone,
            )
        return SenderLimits(
            min_spacing=account.min_spacing,
            daily_cap=account.daily_message_cap,
            weekly_cap=None,
            timezone=account.timezone,
        )

    def _allocate(
        self,
        campaign: Campaign,
        action: Action,
        requests: Sequence[SlotRequest],
    ) -> dict[str, dt.datetime]:
        """Stagger ``requests`` (all of one action) for the campaign's identity of it."""
        if not requests:
            return {}
        sender = campaign.sender_for(action)
        earliest = min(r.earliest for r in requests)
        window = (earliest - dt.timedelta(days=8), earliest + dt.timedelta(days=400))
        same = _SAME_CAP_GROUP[action]
        booked = self.storage.sender_bookings(campaign.workspace_id, sender, *window, actions=same)
        # The account's other kinds of action keep their distance but have caps of their own.
        others = _CHANNEL_ACTIONS[action.channel] - same
        occupied = (
            self.storage.sender_bookings(campaign.workspace_id, sender, *window, actions=others)
            if others
            else []
        )
        return allocate_slots(
            requests,
            self._limits_for(campaign, action),
            seed=f"{campaign.settings.seed}:{campaign.id}:{action}",
            booked=booked,
            occupied=occupied,
        )

    def _plan(
        self, campaign: Campaign, enrolments: Sequence[Enrolment], start: dt.datetime
    ) -> list[ScheduledSend]:
        by_action: dict[Action, list[SlotRequest]] = {}
        calendars = {}
        for enrolment in enrolments:
            calendar = calendar_for(
                enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
            )
            calendars[enrolment.lead_id] = calendar
            first = enrolment.steps[0]
            by_action.setdefault(first.action, []).append(
                SlotRequest(
                    key=enrolment.lead_id,
                    earliest=step_moment(calendar, start, 0),
                    calendar=calendar,
                    follow_up=False,
                )
            )
        slots: dict[str, dt.datetime] = {}
        for action, requests in sorted(by_action.items()):
            slots.update(self._allocate(campaign, action, requests))
        sends: list[ScheduledSend] = []
        for enrolment in enrolments:
            calendar = calendars[enrolment.lead_id]
            moments = forecast(calendar, enrolment.steps, slots[enrolment.lead_id])
            for index, (step, moment) in enumerate(zip(enrolment.steps, moments, strict=True)):
                sends.append(
                    ScheduledSend(
                        id=send_id_for(campaign.id, enrolment.lead_id, step.number),
                        workspace_id=campaign.workspace_id,
                        campaign_id=campaign.id,
                        lead_id=enrolment.lead_id,
                        step=step.number,
                        action=step.action,
                        sender_id=campaign.sender_for(step.action),
                        due_at=moment,
                        forecast_at=moment,
                        status=SendStatus.SCHEDULED if index == 0 else SendStatus.PENDING,
                        with_note=step.with_note,
                    )
                )
        return sends

    # -- dispatch ------------------------------------------------------------------------

    def dispatch_due(
        self,
        *,
        worker_id: str = "worker",
        lease: dt.timedelta = dt.timedelta(minutes=5),
        limit: int = 100,
        workspace_id: WorkspaceId | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> DispatchReport:
        """Send what is due now: claim with a lease, re-check, send, record, charge, re-time.

        Each claimed send is checked again against its lead's status, its campaign's status
        and its business window at this moment; what no longer fits is re-timed or skipped,
        not sent. A sent step re-times the lead's next step from the actual send. Transient
        sender failures retry with backoff inside business hours, up to the campaign's
        ``max_attempts``; permanent ones stop the lead and release its reserved credits.

        Args:
            worker_id: this worker's identity (leases are held in its name).
            lease: how long a claim lasts; a crashed worker's sends are retried after it, with
                the same idempotency key.
            limit: most sends to claim in this pass.
            workspace_id: serve one workspace only (None: all).
            should_stop: checked between sends; True stops the pass after the send in hand.
        """
        now = self.clock.now()
        claimed = self.storage.claim_due(
            now, worker_id=worker_id, lease=lease, limit=limit, workspace_id=workspace_id
        )
        report = DispatchReport()
        for index, send in enumerate(claimed):
            if should_stop is not None and should_stop():
                # Hand back what this pass will not send, so another worker need not wait
                # for the lease to expire.
                for left in claimed[index:]:
                    report = report.count(self._hand_back(left, worker_id))
                break
            try:
                outcome = self._dispatch_one(send, worker_id)
            except LeaseLost:
                outcome = "lease_lost"
            report = report.count(outcome)
        for workspace, campaign_id in sorted({(s.workspace_id, s.campaign_id) for s in claimed}):
            self._complete_if_done(workspace, campaign_id)
        return report

    def _complete_if_done(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> None:
        """Mark an active campaign completed once every lead has reached a final status."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        if campaign.status is not CampaignStatus.ACTIVE:
            return
        enrolments = self.storage.list_enrolments(workspace_id, campaign_id)
        if not all(e.status.is_final for e in enrolments):
            return
        now = self.clock.now()
        done = _bump(campaign, status=CampaignStatus.COMPLETED, finished_at=now)
        with contextlib.suppress(ConcurrentUpdate):  # another writer got there first
            self.storage.commit(workspace_id, Changes(campaigns=(done,)))

    def _hand_back(self, send: ScheduledSend, worker_id: str) -> str:
        """Return a claimed, unsent send to the queue as it was before the claim."""
        enrolment = self.storage.get_enrolment(send.workspace_id, send.campaign_id, send.lead_id)
        gated = any(s.number == send.step and s.gated_on_acceptance for s in enrolment.steps)
        # A gated step still waiting for its acceptance was claimed for its deadline.
        waiting = gated and enrolment.accepted_at is None
        try:
            self.storage.finish_send(
                _bump(
                    send,
                    status=SendStatus.WAITING if waiting else SendStatus.SCHEDULED,
                    attempts=max(send.attempts - 1, 0),
                    lease_owner=None,
                    lease_expires_at=None,
                ),
                worker_id=worker_id,
                now=self.clock.now(),
            )
        except LeaseLost:
            return "lease_lost"
        return "handed_back"

    def _dispatch_one(self, send: ScheduledSend, worker_id: str) -> str:
        ws = send.workspace_id
        campaign = self.storage.get_campaign(ws, send.campaign_id)
        enrolment = stored = self.storage.get_enrolment(ws, send.campaign_id, send.lead_id)
        step = next(s for s in enrolment.steps if s.number == send.step)
        calendar = calendar_for(
            enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
        )
        now = self.clock.now()

        # A stopped lead first: a cancelled campaign has stopped every lead, so its claimed
        # sends are skipped (and released) here rather than put back.
        if enrolment.status.is_final:
            self._finish_skipped(send, worker_id, now, enrolment.reason or str(enrolment.status))
            return "skipped"
        if campaign.status is not CampaignStatus.ACTIVE:
            # Paused after the claim: hand it back as it was (a waiting step stays waiting).
            self._hand_back(send, worker_id)
            return "deferred"
        suppressed = self.storage.suppressed(ws, _contact_keys(enrolment.lead))
        if suppressed:
            self._finish_failed(
                enrolment,
                send,
                worker_id,
                now,
                f"on the suppression list ({sorted(suppressed)[0]})",
                send_status=SendStatus.SKIPPED,
                enrolment_status=EnrolmentStatus.UNSUBSCRIBED,
            )
            return "skipped"
        if step.gated_on_acceptance and enrolment.accepted_at is None:
            reason = (
                "connection request not accepted within "
                f"{campaign.settings.connection_timeout_days} business days"
            )
            self._finish_skipped(
                send, worker_id, now, reason, enrolment, timed_out=True, campaign=campaign
            )
            return "timed_out"
        if enrolment.status in (EnrolmentStatus.PAUSED, EnrolmentStatus.OUT_OF_OFFICE):
            resume = enrolment.resume_at
            if enrolment.status is EnrolmentStatus.PAUSED or resume is None or resume > now:
                # Held by the user (look again tomorrow) or out of office (until the return).
                later = (
                    resume
                    if enrolment.status is EnrolmentStatus.OUT_OF_OFFICE
                    and resume is not None
                    and resume > now
                    else now + dt.timedelta(days=1)
                )
                self._finish_retimed(
                    send, worker_id, now, self._slot(campaign, send, calendar, later), deferral=True
                )
                return "deferred"
            # Back from out-of-office: written (bumped) with whatever this send records.
            enrolment = attrs.evolve(
                enrolment, status=EnrolmentStatus.ACTIVE, resume_at=None, reason=""
            )
        changed = _bump(enrolment) if enrolment is not stored else None
        moment = calendar.next_business_moment(now)
        if moment != now.astimezone(moment.tzinfo):
            # Outside the recipient's business hours now (hours changed, or a late worker).
            self._finish_retimed(
                send,
                worker_id,
                now,
                self._slot(campaign, send, calendar, moment),
                changed,
                deferral=True,
            )
            return "deferred"

        # Keep the sender's actual sends apart too: a worker that polls less often than the
        # spacing would otherwise send everything that fell due since its last pass at once.
        spacing = self._limits_for(campaign, send.action).min_spacing
        last = self.storage.last_sent(ws, send.sender_id, actions=_CHANNEL_ACTIONS[step.channel])
        if last is not None and dt.timedelta(0) <= now - last < spacing:
            self._finish_retimed(
                send,
                worker_id,
                now,
                self._slot(campaign, send, calendar, last + spacing),
                changed,
                deferral=True,
            )
            return "deferred"

        draft = None
        if step.needs_draft and (step.action is not Action.LINKEDIN_CONNECT or send.with_note):
            draft = self._draft(ws, send.campaign_id, send.lead_id, send.step)
        result = self._send(campaign, enrolment, send, draft)
        if isinstance(result, SendReceipt):
            self._finish_sent(campaign, enrolment, send, calendar, worker_id, result, stored)
            return "sent"
        if not result.permanent and send.attempts < campaign.settings.max_attempts:
            backoff = result.retry_after or dt.timedelta(minutes=5 * 2 ** (send.attempts - 1))
            retry = self._slot(campaign, send, calendar, now + backoff)
            self._finish_retimed(
                send, worker_id, now, retry, changed, reason=f"retrying: {result.reason}"
            )
            return "retried"
        reason = (
            result.reason
            if result.permanent
            else f"gave up after {send.attempts} attempts: {result.reason}"
        )
        self._finish_failed(enrolment, send, worker_id, now, reason)
        return "failed"

    def _send(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        draft: Draft | None,
    ) -> SendReceipt | SendFailure:
        lead = enrolment.lead
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
        if send.action is Action.EMAIL:
            mailbox = campaign.email_identity
            if self.email_sender is None or mailbox is None or draft is None or not lead.email:
                return SendFailure(permanent=True, reason="no email sender, mailbox or address")
            return self.email_sender.send_email(
                OutgoingEmail(
                    idempotency_key=send.idempotency_key,
                    sender_id=mailbox.id,
                    from_address=mailbox.address,
                    from_name=mailbox.display_name,
                    to_address=lead.email,
                    to_name=name,
                    subject=draft.subject or "",
                    body=draft.body,
                    campaign_id=send.campaign_id,
                    lead_id=send.lead_id,
                    step=send.step,
                    unsubscribe=self.unsubscribe_url(send) if self.unsubscribe_url else "",
                )
            )
        account = campaign.linkedin_identity
        if self.linkedin_sender is None or account is None or not lead.linkedin_url:
            return SendFailure(permanent=True, reason="no LinkedIn sender, account or profile")
        return self.linkedin_sender.send_linkedin(
            LinkedInAction(
                idempotency_key=send.idempotency_key,
                sender_id=account.id,
                action=send.action,
                profile_url=lead.linkedin_url,
                recipient_name=name,
                text=draft.body if draft is not None else None,
                campaign_id=send.campaign_id,
                lead_id=send.lead_id,
                step=send.step,
            )
        )

    def _slot(
        self,
        campaign: Campaign,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        earliest: dt.datetime,
    ) -> dt.datetime:
        """A staggered instant for one send of the campaign at or after ``earliest``."""
        request = SlotRequest(
            key=send.id,
            earliest=calendar.next_business_moment(earliest),
            calendar=calendar,
            follow_up=send.step > 1,
        )
        return self._allocate(campaign, send.action, [request])[send.id]

    def _finish_retimed(
        self,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        due: dt.datetime,
        enrolment: Enrolment | None = None,
        reason: str = "",
        *,
        deferral: bool = False,
    ) -> None:
        """Put a claimed send back, due at ``due``. A deferral (nothing was handed to a
        sender) gives back the attempt its claim counted."""
        self.storage.finish_send(
            _bump(
                send,
                status=SendStatus.SCHEDULED,
                due_at=due.astimezone(dt.UTC),
                attempts=max(send.attempts - 1, 0) if deferral else send.attempts,
                lease_owner=None,
                lease_expires_at=None,
                reason=reason,
            ),
            worker_id=worker_id,
            now=now,
            changes=Changes(enrolments=(enrolment,) if enrolment is not None else ()),
        )

    def _prices_of(self, campaign: Campaign) -> PriceTable:
        """The prices a campaign's credits move by: those it was created under."""
        return campaign.prices if campaign.prices is not None else self.prices

    def _release(self, sends: Iterable[ScheduledSend], note: str) -> list[CreditMovement]:
        prices: dict[tuple[WorkspaceId, CampaignId], PriceTable] = {}
        movements = []
        for s in sends:
            key = (s.workspace_id, s.campaign_id)
            if key not in prices:
                prices[key] = self._prices_of(self.storage.get_campaign(*key))
            movements.append(
                CreditMovement(
                    kind=MovementKind.RELEASE,
                    amount=prices[key].price_of(s.action),
                    campaign_id=s.campaign_id,
                    lead_id=s.lead_id,
                    key=f"release:{s.workspace_id}:{s.id}",
                    note=note,
                )
            )
        return movements

    def _finish_skipped(
        self,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        reason: str,
        enrolment: Enrolment | None = None,
        *,
        timed_out: bool = False,
        campaign: Campaign | None = None,
    ) -> None:
        skipped = _bump(
            send, status=SendStatus.SKIPPED, reason=reason, lease_owner=None, lease_expires_at=None
        )
        extra: list[ScheduledSend] = []
        enrolments: tuple[Enrolment, ...] = ()
        if timed_out and enrolment is not None and campaign is not None:
            # Every gated step goes; the lead's other steps carry on from now.
            others = self.storage.list_sends(send.workspace_id, send.campaign_id, send.lead_id)
            gated = {s.number for s in enrolment.steps if s.gated_on_acceptance}
            extra = [
                _bump(o, status=SendStatus.SKIPPED, reason=reason)
                for o in others
                if o.id != send.id and o.step in gated and o.status in _OPEN_UNCLAIMED
            ]
            dropped = {send.id, *(o.id for o in extra)}
            left = [o for o in others if o.id not in dropped and not o.status.is_final]
            updated, scheduled = self._continue_after(campaign, enrolment, left, now, reason)
            extra += scheduled
            enrolments = (updated,)
        self.storage.finish_send(
            skipped,
            worker_id=worker_id,
            now=now,
            changes=Changes(
                sends=tuple(extra),
                enrolments=enrolments,
                activities=(_send_activity(ActivityKind.SKIPPED, send, now, reason),),
            ),
        )
        # Released only once recorded: a lost lease must not give back credits that another
        # worker's send will still charge.
        skipped_now = [send, *(o for o in extra if o.status is SendStatus.SKIPPED)]
        self.ledger.post(send.workspace_id, *self._release(skipped_now, reason))

    def _continue_after(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        left: Sequence[ScheduledSend],
        anchor: dt.datetime,
        reason: str,
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        """After a lead's gated steps were dropped (a decline, a timeout): schedule its next
        step from ``anchor`` when nothing else is on its way, or complete the lead when no step
        is left. Returns the enrolment (revision bumped) and the sends to write."""
        if not left:
            return _bump(enrolment.stop(EnrolmentStatus.COMPLETED, reason)), []
        status = (
            EnrolmentStatus.ACTIVE
            if enrolment.status is EnrolmentStatus.WAITING_ON_CONNECTION
            else enrolment.status
        )
        updated = _bump(enrolment, status=status)
        if any(o.status is not SendStatus.PENDING for o in left):
            return updated, []  # a step is already scheduled (or in flight)
        nxt = min(left, key=lambda o: o.step)
        step = next(s for s in enrolment.steps if s.number == nxt.step)
        calendar = calendar_for(
            enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
        )
        earliest = step_moment(calendar, anchor, step.wait_days)
        due = self._slot(campaign, nxt, calendar, earliest)
        return updated, [_bump(nxt, status=SendStatus.SCHEDULED, due_at=due)]

    def _finish_failed(
        self,
        enrolment: Enrolment,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        reason: str,
        *,
        send_status: SendStatus = SendStatus.FAILED,
        enrolment_status: EnrolmentStatus = EnrolmentStatus.FAILED,
    ) -> None:
        """Stop the lead: this send ends with ``send_status``, every other pending step of
        the lead is skipped, reservations are released."""
        failed = _bump(
            send, status=send_status, reason=reason, lease_owner=None, lease_expires_at=None
        )
        others = [
            _bump(o, status=SendStatus.SKIPPED, reason=f"stopped: {reason}")
            for o in self.storage.list_sends(send.workspace_id, send.campaign_id, send.lead_id)
            if o.id != send.id and o.status in _OPEN_UNCLAIMED
        ]
        stopped = enrolment.stop(enrolment_status, reason)
        kind = ActivityKind.FAILED if send_status is SendStatus.FAILED else ActivityKind.STOPPED
        self.storage.finish_send(
            failed,
            worker_id=worker_id,
            now=now,
            changes=Changes(
                sends=tuple(others),
                enrolments=(attrs.evolve(stopped, revision=enrolment.revision + 1),),
                activities=(_send_activity(kind, send, now, reason),),
            ),
        )
        self.ledger.post(send.workspace_id, *self._release([send, *others], reason))

    def _finish_sent(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        worker_id: str,
        receipt: SendReceipt,
        stored: Enrolment,
    ) -> None:
        """Record a send the sender accepted, re-time the lead's next step from it, charge.

        The message is out, so it is recorded whatever happened to the lead meanwhile: when
        another writer changed the enrolment (a reply, an acceptance), it is read again and the
        record retried. The charge follows the record, keyed by the idempotency key; a crash in
        between leaves a sent step without its charge, which ``reconcile_credits`` posts.
        """
        now = self.clock.now()
        for attempt in range(_RETRIES + 1):
            try:
                self._record_sent(
                    campaign, enrolment, send, calendar, worker_id, receipt, stored, now
                )
                break
            except ConcurrentUpdate:
                if attempt == _RETRIES:
                    raise
                stored = enrolment = self.storage.get_enrolment(
                    send.workspace_id, send.campaign_id, send.lead_id
                )
        self.ledger.post(
            send.workspace_id,
            CreditMovement(
                kind=MovementKind.CHARGE,
                amount=self._prices_of(campaign).price_of(send.action),
                campaign_id=send.campaign_id,
                lead_id=send.lead_id,
                key=f"charge:{send.idempotency_key}",
                note=f"step {send.step} sent",
            ),
        )

    def _record_sent(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        worker_id: str,
        receipt: SendReceipt,
        stored: Enrolment,
        now: dt.datetime,
    ) -> None:
        ws = send.workspace_id
        sent = _bump(
            send,
            status=SendStatus.SENT,
            sent_at=now,
            receipt=receipt.message_id,
            reason="",
            lease_owner=None,
            lease_expires_at=None,
        )
        index = next(i for i, s in enumerate(enrolment.steps) if s.number == send.step)
        updated = enrolment
        if send.action is Action.LINKEDIN_CONNECT:
            updated = attrs.evolve(updated, connect_sent_at=now)
        later = [
            s
            for s in self.storage.list_sends(ws, send.campaign_id, send.lead_id)
            if s.step > send.step and s.status is SendStatus.PENDING
        ]
        changed: list[ScheduledSend] = []
        if enrolment.status.is_final:
            pass  # stopped while this send was in flight: record it, schedule nothing more
        elif index + 1 < len(enrolment.steps):
            nxt_step = enrolment.steps[index + 1]
            nxt = next((s for s in later if s.step == nxt_step.number), None)
            if nxt is not None:
                if nxt_step.gated_on_acceptance and updated.accepted_at is None:
                    deadline = self._acceptance_deadline(campaign, calendar, updated, now)
                    changed.append(_bump(nxt, status=SendStatus.WAITING, due_at=deadline))
                    updated = attrs.evolve(updated, status=EnrolmentStatus.WAITING_ON_CONNECTION)
                else:
                    anchor = now
                    if (
                        nxt_step.counts_from is WaitAnchor.CONNECTION_ACCEPTED
                        and updated.accepted_at is not None
                    ):
                        anchor = updated.accepted_at
                    earliest = max(
                        step_moment(calendar, anchor, nxt_step.wait_days),
                        calendar.next_business_moment(now),
                    )
                    due = self._slot(campaign, nxt, calendar, earliest)
                    changed.append(_bump(nxt, status=SendStatus.SCHEDULED, due_at=due))
        elif not any(not s.status.is_final for s in later):
            updated = updated.stop(EnrolmentStatus.COMPLETED, "every step sent")
        # Written when anything changed since it was read (including a return from
        # out-of-office that the caller applied).
        enrolments = (
            (attrs.evolve(updated, revision=stored.revision + 1),) if updated != stored else ()
        )
        self.storage.finish_send(
            sent,
            worker_id=worker_id,
            now=now,
            changes=Changes(
                sends=tuple(changed),
                enrolments=enrolments,
                activities=(
                    _send_activity(
                        ActivityKind.SENT,
                        send,
                        now,
                        f"{_ACTION_LABEL[send.action]} sent ({receipt.message_id})",
                    ),
                ),
            ),
        )

    def _acceptance_deadline(
        self,
        campaign: Campaign,
        calendar: BusinessCalendar,
        enrolment: Enrolment,
        connect_sent: dt.datetime,
    ) -> dt.datetime:
        local = connect_sent.astimezone(calendar.zone)
        day = calendar.add_business_days(local.date(), campaign.settings.connection_timeout_days)
        window = calendar.business_window(day)
        assert window is not None
        return window[1].astimezone(dt.UTC)

    # -- inbound events ------------------------------------------------------------------

    def report_event(self, workspace_id: WorkspaceId, event: InboundEvent) -> tuple[Enrolment, ...]:
        """Apply an event the host app observed (reply, acceptance, bounce...).

        A reply (or a booked meeting) stops every remaining step of the contact in that
        campaign — in every campaign when the campaign's ``stop_scope`` is ``workspace`` —
        and, with ``stop_company_on_reply``, of every contact at the same email domain.
        Unsubscribe and bounce stop the contact everywhere and add it to the suppression list.
        An acceptance starts the gated message's wait; a decline skips the gated steps. An
        out-of-office pauses the lead until the return date (or ``out_of_office_days``).
        Reserved credits of every step that will not be sent are released.

        Reporting the same event twice changes nothing.

        Returns:
            The enrolments the event changed (empty for a repeat).

        Raises:
            UnknownContact: no campaign of the workspace enrolled this lead.
            InvalidEvent: the event's time is naive.
        """
        if event.at.utcoffset() is None:
            raise InvalidEvent(f"event {event.kind} for {event.lead_id!r}: 'at' must be aware")
        for _ in range(_RETRIES):
            try:
                return self._apply_event(workspace_id, event)
            except ConcurrentUpdate:
                continue
        return self._apply_event(workspace_id, event)

    def _apply_event(self, workspace_id: WorkspaceId, event: InboundEvent) -> tuple[Enrolment, ...]:
        mine = self.storage.find_enrolments(workspace_id, lead_id=event.lead_id)
        if event.campaign_id is not None:
            scoped = [e for e in mine if e.campaign_id == event.campaign_id]
        else:
            scoped = mine
        if not scoped:
            where = f" in campaign {event.campaign_id!r}" if event.campaign_id else ""
            raise UnknownContact(
                f"workspace {workspace_id!r} never enrolled lead {event.lead_id!r}{where}"
            )
        now = self.clock.now()
        kind = event.kind
        changes: list[tuple[Enrolment, list[ScheduledSend]]] = []
        suppress: tuple[str, ...] = ()
        releases: list[ScheduledSend] = []
        if kind in (EventKind.REPLY, EventKind.MEETING_BOOKED):
            status = (
                EnrolmentStatus.REPLIED
                if kind is EventKind.REPLY
                else EnrolmentStatus.MEETING_BOOKED
            )
            targets = {(e.campaign_id, e.lead_id): e for e in scoped}
            for enrolment in scoped:
                settings = self.storage.get_campaign(workspace_id, enrolment.campaign_id).settings
                if settings.stop_scope is StopScope.WORKSPACE:
                    targets.update({(e.campaign_id, e.lead_id): e for e in mine})
                if settings.stop_company_on_reply and enrolment.lead.email:
                    domain = enrolment.lead.email.rsplit("@", 1)[1].lower()
                    for other in self.storage.find_enrolments(workspace_id, email_domain=domain):
                        targets.setdefault((other.campaign_id, other.lead_id), other)
            for enrolment in targets.values():
                own = enrolment.lead_id == event.lead_id
                why = f"{kind.value.replace('_', ' ')}" + ("" if own else f" from {event.lead_id}")
                changes.append(
                    self._stopped(
                        enrolment, status if own else EnrolmentStatus.COMPLETED, why, releases
                    )
                )
        elif kind in (EventKind.UNSUBSCRIBE, EventKind.BOUNCE):
            status = (
                EnrolmentStatus.UNSUBSCRIBED
                if kind is EventKind.UNSUBSCRIBE
                else EnrolmentStatus.BOUNCED
            )
            for enrolment in mine:
                changes.append(self._stopped(enrolment, status, kind.value, releases))
            emails = {e.lead.email.lower() for e in mine if e.lead.email}
            suppress = (event.lead_id, *sorted(emails))
        elif kind is EventKind.CONNECTION_ACCEPTED:
            for enrolment in scoped:
                if enrolment.accepted_at is None and not enrolment.status.is_final:
                    changes.append(self._accepted(enrolment, event.at, now))
        elif kind is EventKind.CONNECTION_DECLINED:
            for enrolment in scoped:
                if not enrolment.status.is_final:
                    changes.append(self._declined(enrolment, releases, now))
        elif kind is EventKind.OUT_OF_OFFICE:
            for enrolment in scoped:
                if not enrolment.status.is_final:
                    changes.append(self._out_of_office(enrolment, event, now))
        stored = self.storage.commit(
            workspace_id,
            Changes(
                enrolments=tuple(e for e, _ in changes),
                sends=tuple(s for _, sends in changes for s in sends),
                suppress=suppress,
                activities=(
                    Activity(
                        kind=ActivityKind.EVENT,
                        at=event.at.astimezone(dt.UTC),
                        campaign_id=event.campaign_id,
                        lead_id=event.lead_id,
                        detail=f"{kind.value}: {event.detail}".rstrip(": "),
                        key=event.dedupe_key,
                    ),
                ),
            ),
        )
        if not stored:
            return ()
        if releases:
            self.ledger.post(workspace_id, *self._release(releases, kind.value))
        for campaign_id in sorted({e.campaign_id for e, _ in changes}):
            self._complete_if_done(workspace_id, campaign_id)
        return tuple(e for e, _ in changes)

    def _stopped(
        self,
        enrolment: Enrolment,
        status: EnrolmentStatus,
        reason: str,
        releases: list[ScheduledSend],
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        sends = [
            _bump(s, status=SendStatus.SKIPPED, reason=reason)
            for s in self.storage.list_sends(
                enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
            )
            if s.status in _OPEN_UNCLAIMED
        ]
        releases.extend(sends)
        stopped = enrolment.stop(status, reason) if not enrolment.status.is_final else enrolment
        return _bump(stopped), sends

    def _calendar_of(self, enrolment: Enrolment) -> tuple[Campaign, BusinessCalendar]:
        campaign = self.storage.get_campaign(enrolment.workspace_id, enrolment.campaign_id)
        calendar = calendar_for(
            enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
        )
        return campaign, calendar

    def _accepted(
        self, enrolment: Enrolment, at: dt.datetime, now: dt.datetime
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        campaign, calendar = self._calendar_of(enrolment)
        steps = {s.number: s for s in enrolment.steps}
        sends = []
        for send in self.storage.list_sends(
            enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
        ):
            if send.status is not SendStatus.WAITING:
                continue
            earliest = max(
                step_moment(calendar, at, steps[send.step].wait_days),
                calendar.next_business_moment(now),
            )
            sends.append(
                _bump(
                    send,
                    status=SendStatus.SCHEDULED,
                    due_at=self._slot(campaign, send, calendar, earliest),
                )
            )
        status = (
            EnrolmentStatus.ACTIVE
            if enrolment.status is EnrolmentStatus.WAITING_ON_CONNECTION
            else enrolment.status
        )
        return _bump(enrolment, accepted_at=at.astimezone(dt.UTC), status=status), sends

    def _declined(
        self, enrolment: Enrolment, releases: list[ScheduledSend], now: dt.datetime
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        all_sends = self.storage.list_sends(
            enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
        )
        if not all_sends:
            # Nothing scheduled yet, so no request can have been declined: nothing changes but
            # the revision (the event is still journalled).
            return _bump(enrolment), []
        gated = {s.number for s in enrolment.steps if s.gated_on_acceptance}
        sends = [
            _bump(s, status=SendStatus.SKIPPED, reason="connection request declined")
            for s in all_sends
            if s.step in gated and s.status in _OPEN_UNCLAIMED
        ]
        releases.extend(sends)
        skipped = {s.id for s in sends}
        left = [s for s in all_sends if s.id not in skipped and not s.status.is_final]
        campaign = self.storage.get_campaign(enrolment.workspace_id, enrolment.campaign_id)
        updated, scheduled = self._continue_after(
            campaign, enrolment, left, now, "connection request declined"
        )
        return updated, sends + scheduled

    def _out_of_office(
        self, enrolment: Enrolment, event: InboundEvent, now: dt.datetime
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        campaign, calendar = self._calendar_of(enrolment)
        if event.return_date is not None:
            day = calendar.add_business_days(event.return_date, 0)
        else:
            local = event.at.astimezone(calendar.zone).date()
            day = calendar.add_business_days(local, campaign.settings.out_of_office_days)
        window = calendar.business_window(day)
        assert window is not None
        resume = window[0].astimezone(dt.UTC)
        sends = [
            _bump(s, due_at=self._slot(campaign, s, calendar, resume))
            for s in self.storage.list_sends(
                enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
            )
            if s.status is SendStatus.SCHEDULED and s.due_at < resume
        ]
        updated = _bump(
            enrolment,
            status=EnrolmentStatus.OUT_OF_OFFICE,
            resume_at=resume,
            reason=f"out of office until {day.isoformat()}",
        )
        return updated, sends

    # -- control ---------------------------------------------------------------------------

    def update_settings(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, settings: CampaignSettings
    ) -> Campaign:
        """Replace a campaign's settings (business hours, closures, timeouts, stop rules...).

        Scheduled sends keep their instants; each is checked against the new settings when it
        is claimed (a send that no longer lies in the recipient's business hours is re-timed,
        not sent), and later steps are timed with them.

        Raises:
            IllegalTransition: the campaign is cancelled or completed.
        """
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            raise IllegalTransition(f"campaign {campaign_id!r} is {campaign.status}")
        updated = _bump(campaign, settings=settings)
        self.storage.commit(workspace_id, Changes(campaigns=(updated,)))
        return updated

    def pause_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Stop sending; nothing pending is lost. Raises ``IllegalTransition`` unless active."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        paused = _bump(campaign.pause(self.clock.now()))
        self.storage.commit(
            workspace_id,
            Changes(
                campaigns=(paused,),
                activities=(
                    Activity(
                        kind=ActivityKind.PAUSED, at=self.clock.now(), campaign_id=campaign_id
                    ),
                ),
            ),
        )
        return paused

    def resume_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Send again. Sends that fell due during the pause are re-timed from now (staggered),
        so the waits after them are honoured from their actual sends."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        resumed = _bump(campaign.resume())
        now = self.clock.now()
        retimed = self._retime_overdue(
            resumed, self.storage.list_sends(workspace_id, campaign_id), now
        )
        self.storage.commit(
            workspace_id,
            Changes(
                campaigns=(resumed,),
                sends=tuple(retimed),
                activities=(Activity(kind=ActivityKind.RESUMED, at=now, campaign_id=campaign_id),),
            ),
        )
        return resumed

    def _retime_overdue(
        self, campaign: Campaign, sends: Sequence[ScheduledSend], now: dt.datetime
    ) -> list[ScheduledSend]:
        overdue = [s for s in sends if s.status is SendStatus.SCHEDULED and s.due_at < now]
        by_action: dict[Action, list[SlotRequest]] = {}
        for send in overdue:
            enrolment = self.storage.get_enrolment(campaign.workspace_id, campaign.id, send.lead_id)
            calendar = calendar_for(
                enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
            )
            by_action.setdefault(send.action, []).append(
                SlotRequest(
                    key=send.id,
                    earliest=calendar.next_business_moment(now),
                    calendar=calendar,
                    follow_up=send.step > 1,
                )
            )
        slots: dict[str, dt.datetime] = {}
        for action, requests in sorted(by_action.items()):
            slots.update(self._allocate(campaign, action, requests))
        return [_bump(s, due_at=slots[s.id]) for s in overdue]

    def cancel_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Stop for good: every pending step is skipped and its reserved credits released."""
        for _ in range(_RETRIES):
            try:
                return self._cancel(workspace_id, campaign_id)
            except ConcurrentUpdate:
                continue
        return self._cancel(workspace_id, campaign_id)

    def _cancel(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        now = self.clock.now()
        cancelled = _bump(campaign.cancel(now))
        releases: list[ScheduledSend] = []
        enrolments = []
        sends = []
        for enrolment in self.storage.list_enrolments(workspace_id, campaign_id):
            if enrolment.status.is_final:
                continue
            stopped, skipped = self._stopped(
                enrolment, EnrolmentStatus.CANCELLED, "campaign cancelled", releases
            )
            enrolments.append(stopped)
            sends.extend(skipped)
        self.storage.commit(
            workspace_id,
            Changes(
                campaigns=(cancelled,),
                enrolments=tuple(enrolments),
                sends=tuple(sends),
                activities=(
                    Activity(kind=ActivityKind.CANCELLED, at=now, campaign_id=campaign_id),
                ),
            ),
        )
        if releases:
            self.ledger.post(workspace_id, *self._release(releases, "campaign cancelled"))
        return cancelled

    def pause_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """Hold one lead's remaining steps until :meth:`resume_enrolment`."""
        enrolment = self.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        if enrolment.status.is_final:
            raise IllegalTransition(f"lead {lead_id!r} in {campaign_id!r} is {enrolment.status}")
        paused = _bump(enrolment, status=EnrolmentStatus.PAUSED, reason="paused by the user")
        self.storage.commit(workspace_id, Changes(enrolments=(paused,)))
        return paused

    def resume_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """Resume one paused lead; its overdue step is re-timed from now."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        enrolment = self.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        if enrolment.status not in (EnrolmentStatus.PAUSED, EnrolmentStatus.OUT_OF_OFFICE):
            raise IllegalTransition(f"lead {lead_id!r} in {campaign_id!r} is not paused")
        sends = self.storage.list_sends(workspace_id, campaign_id, lead_id)
        waiting = any(s.status is SendStatus.WAITING for s in sends)
        if campaign.status is CampaignStatus.DRAFT:
            status = EnrolmentStatus.IN_REVIEW
        elif waiting:
            status = EnrolmentStatus.WAITING_ON_CONNECTION
        else:
            status = EnrolmentStatus.ACTIVE
        resumed = _bump(
            enrolment,
            status=status,
            reason="",
            resume_at=None,
        )
        retimed = self._retime_overdue(campaign, sends, self.clock.now())
        self.storage.commit(workspace_id, Changes(enrolments=(resumed,), sends=tuple(retimed)))
        return resumed

    # -- monitoring ------------------------------------------------------------------------

    def status(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> CampaignStatusReport:
        """Every enrolled contact with its current step, status and next send (local and UTC),
        and the counts per step and status."""
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        sends_by_lead: dict[LeadId, list[ScheduledSend]] = {}
        for send in self.storage.list_sends(workspace_id, campaign_id):
            sends_by_lead.setdefault(send.lead_id, []).append(send)
        rows = []
        counts: dict[tuple[int, str], int] = {}
        for enrolment in self.storage.list_enrolments(workspace_id, campaign_id):
            calendar = calendar_for(
                enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
            )
            sends = sends_by_lead.get(enrolment.lead_id, [])
            current = next((s for s in sends if not s.status.is_final), None)
            if current is None and sends:
                current = sends[-1]
            step = current.step if current is not None else enrolment.steps[0].number
            next_utc = (
                current.due_at
                if current is not None
                and current.status in (SendStatus.SCHEDULED, SendStatus.CLAIMED)
                else None
            )
            rows.append(
                ContactStatus(
                    lead=enrolment.lead,
                    step=step,
                    action=current.action if current is not None else enrolment.steps[0].action,
                    status=enrolment.status,
                    send_status=current.status if current is not None else None,
                    next_send_utc=next_utc,
                    next_send_local=next_utc.astimezone(calendar.zone) if next_utc else None,
                    reason=enrolment.reason,
                )
            )
            for send in sends:
                key = (send.step, send.status.value)
                counts[key] = counts.get(key, 0) + 1
        return CampaignStatusReport(
            campaign=campaign,
            contacts=tuple(rows),
            counts=tuple(sorted((step, st, n) for (step, st), n in counts.items())),
        )

    def waiting_on_connections(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None = None
    ) -> list[WaitingOnConnection]:
        """The tasks view: leads whose LinkedIn message waits for an acceptance, with since when
        and when it times out."""
        campaigns = (
            [self.storage.get_campaign(workspace_id, campaign_id)]
            if campaign_id is not None
            else self.storage.list_campaigns(workspace_id)
        )
        tasks = []
        for campaign in campaigns:
            enrolments = {
                e.lead_id: e for e in self.storage.list_enrolments(workspace_id, campaign.id)
            }
            for send in self.storage.list_sends(workspace_id, campaign.id):
                if send.status is not SendStatus.WAITING:
                    continue
                enrolment = enrolments[send.lead_id]
                tasks.append(
                    WaitingOnConnection(
                        campaign_id=campaign.id,
                        lead=enrolment.lead,
                        step=send.step,
                        since=enrolment.connect_sent_at,
                        times_out_at=send.due_at,
                    )
                )
        return sorted(tasks, key=lambda t: (t.times_out_at, t.lead.id))

    def shape_timeline(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Timeline:
        """The campaign's shape as a timeline: numbered steps joined by their waits."""
        return timeline_of_shape(self.storage.get_campaign(workspace_id, campaign_id).shape)

    def lead_timeline(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Timeline:
        """One lead's timeline: its cadence with each step's status and moment (sent, or due;
        for a step waiting on an acceptance, the deadline), in the lead's own timezone."""
        enrolment, sends = self.lead_timeline_states(workspace_id, campaign_id, lead_id)
        lead = enrolment.lead
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.id
        states = [
            LeadStepState(
                step=send.step,
                status=send.status,
                at=send.sent_at or send.due_at,
                reason=send.reason,
            )
            for send in sends
        ]
        return timeline_of_lead(name, enrolment.steps, states, timezone=lead.timezone)

    def lead_timeline_states(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        """The enrolment and its sends, for timelines and reports.

        Raises:
            CampaignNotFound: no such campaign in the workspace.
            EnrolmentNotFound: the campaign did not enrol that lead.
        """
        self.storage.get_campaign(workspace_id, campaign_id)
        return (
            self.storage.get_enrolment(workspace_id, campaign_id, lead_id),
            self.storage.list_sends(workspace_id, campaign_id, lead_id),
        )

    # -- credits --------------------------------------------------------------------------

    def campaign_credits(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> CampaignCredits:
        """What one campaign moved in the workspace's credits, from the journal."""
        totals = dict.fromkeys(MovementKind, 0)
        for movement in self.ledger.movements(workspace_id, campaign_id=campaign_id):
            totals[movement.kind] += movement.amount
        # The drafting hold is reserved and released within create_campaign; it is not a
        # send reservation.
        hold = sum(
            m.amount
            for m in self.ledger.movements(workspace_id, campaign_id=campaign_id)
            if m.key.startswith(("draft-hold:", "hold-redraft:"))
        )
        return CampaignCredits(
            drafting=totals[MovementKind.DRAFT],
            reserved=totals[MovementKind.RESERVE] - hold,
            charged=totals[MovementKind.CHARGE],
            released=totals[MovementKind.RELEASE] - hold,
        )

    def reconcile_credits(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId
    ) -> list[CreditMovement]:
        """Repair a campaign's credits after a crash between a stored change and its movement.

        Every credit movement the service posts has an idempotency key, and the store says
        what each movement should have been: a sent step is charged, a skipped or failed one
        released, an approval that never committed gives its reservation back, a drafting hold
        is settled. This posts whatever is missing (keys already posted are skipped by the
        ledger), so it is safe to run at any time and any number of times, e.g. from a
        periodic job.

        Returns:
            The movements that were missing and are now posted.
        """
        campaign: Campaign | None
        try:
            campaign = self.storage.get_campaign(workspace_id, campaign_id)
        except CampaignNotFound:
            campaign = None
        posted = self.ledger.movements(workspace_id, campaign_id=campaign_id)
        keys = {m.key for m in posted if m.key}
        missing: list[CreditMovement] = []
        # Drafting holds of creation attempts that never settled: give each back, and charge
        # the drafts stored by the one attempt that committed (once).
        charged_drafts = any(m.key.startswith(f"draft:{campaign_id}:") for m in posted)
        for hold in posted:
            if not hold.key.startswith(f"draft-hold:{campaign_id}:"):
                continue
            attempt = hold.key.removeprefix("draft-hold:")
            if f"draft-unhold:{attempt}" in keys:
                continue
            made = 0
            if campaign is not None and not charged_drafts:
                charged_drafts = True
                made = sum(
                    1
                    for d in self.storage.list_drafts(workspace_id, campaign_id)
                    if not d.problem.startswith(_DRAFTER_FAILED_PREFIX) and d.version == 1
                )
            missing += [
                CreditMovement(
                    kind=MovementKind.RELEASE,
                    amount=hold.amount,
                    campaign_id=campaign_id,
                    key=f"draft-unhold:{attempt}",
                    note="drafting hold settled (reconciled)",
                ),
                CreditMovement(
                    kind=MovementKind.DRAFT,
                    amount=made * self._prices_of(campaign).draft if campaign is not None else 0,
                    campaign_id=campaign_id,
                    key=f"draft:{attempt}",
                    note=f"drafting {made} messages (reconciled)",
                ),
            ]
        # Approval reservations: exactly one stays when the campaign was approved.
        undone = {m.key.removeprefix("undo-") for m in posted if m.key.startswith("undo-approve:")}
        open_holds = [
            m
            for m in posted
            if m.kind is MovementKind.RESERVE
            and m.key.startswith("approve:")
            and m.key not in undone
        ]
        approved = campaign is not None and campaign.status is not CampaignStatus.DRAFT
        for hold in open_holds[:-1] if approved else open_holds:
            missing.append(
                CreditMovement(
                    kind=MovementKind.RELEASE,
                    amount=hold.amount,
                    campaign_id=campaign_id,
                    key=f"undo-{hold.key}",
                    note="approval that never committed; reservation returned (reconciled)",
                )
            )
        sends = self.storage.list_sends(workspace_id, campaign_id) if approved else []
        prices = self._prices_of(campaign) if campaign is not None else self.prices
        for send in sends:
            if send.status is SendStatus.SENT and f"charge:{send.idempotency_key}" not in keys:
                missing.append(
                    CreditMovement(
                        kind=MovementKind.CHARGE,
                        amount=prices.price_of(send.action),
                        campaign_id=campaign_id,
                        lead_id=send.lead_id,
                        key=f"charge:{send.idempotency_key}",
                        note=f"step {send.step} sent (reconciled)",
                    )
                )
        missing += [
            m
            for m in self._release(
                (s for s in sends if s.status in (SendStatus.SKIPPED, SendStatus.FAILED)),
                "will not be sent (reconciled)",
            )
            if m.key not in keys
        ]
        if missing:
            self.ledger.post(workspace_id, *missing)
        return missing

    def balance(self, workspace_id: WorkspaceId) -> CreditAccount:
        """The workspace's credits: available and reserved."""
        return self.ledger.balance(workspace_id)

    def movements(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None = None
    ) -> list[CreditMovement]:
        """The credit journal of the workspace (or of one campaign)."""
        return self.ledger.movements(workspace_id, campaign_id=campaign_id)

    def top_up(self, workspace_id: WorkspaceId, amount: int, note: str = "top-up") -> CreditAccount:
        """Add credits to the workspace."""
        return self.ledger.post(
            workspace_id, CreditMovement(kind=MovementKind.TOP_UP, amount=amount, note=note)
        )

    def campaigns(self, workspace_id: WorkspaceId) -> list[Campaign]:
        """The workspace's campaigns, oldest first."""
        return self.storage.list_campaigns(workspace_id)


_DRAFTER_FAILED_PREFIX = "drafter failed"

_CHANNEL_ACTIONS: dict[Channel, frozenset[Action]] = {
    channel: frozenset(a for a in Action if a.channel is channel) for channel in Channel
}

_SAME_CAP_GROUP: dict[Action, frozenset[Action]] = {
    Action.EMAIL: frozenset({Action.EMAIL}),
    Action.LINKEDIN_CONNECT: frozenset({Action.LINKEDIN_CONNECT}),
    Action.LINKEDIN_MESSAGE: frozenset({Action.LINKEDIN_MESSAGE}),
}
