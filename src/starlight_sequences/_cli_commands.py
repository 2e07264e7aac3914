"""The ``starlight`` subcommands over a SQLite file: one function per subcommand.

Each takes the parsed arguments in a :class:`Session` and returns the exit code. Errors are
raised (the library's :class:`~starlight_sequences.errors.StarlightError`, ``OSError``, or
:class:`CommandError`) and turned into one line on stderr by ``cli.main``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from starlight_sequences import _cli_json
from starlight_sequences._cli_inputs import (
    SMTPServer,
    parse_smtp_url,
    read_leads,
    read_senders,
    read_shape,
    write_lead_file,
)
from starlight_sequences._cli_output import (
    DraftingProgress,
    format_local,
    format_utc,
    plain,
    table,
    terminal_text,
)
from starlight_sequences.adapters.imap import IMAPInbox
from starlight_sequences.adapters.linkedin_tasks import LinkedInTaskFile, LinkedInTaskSender
from starlight_sequences.adapters.outbox import OutboxEmailSender
from starlight_sequences.adapters.smtp import SMTPEmailSender
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.calendar import WarmUp
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    EmailIdentity,
    LinkedInIdentity,
    ScheduledSend,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import InvalidInput, MailboxUnavailable
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.inbound import MAX_MESSAGE_BYTES
from starlight_sequences.leads import Lead
from starlight_sequences.locations import load_timezone, validate_country
from starlight_sequences.monitoring_page import campaign_page
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.drafter import Drafter
from starlight_sequences.ports.senders import EmailSender
from starlight_sequences.reports import CampaignStatusReport, IngestResult
from starlight_sequences.service import CampaignService, DispatchReport, RecipientPreview
from starlight_sequences.timeline import (
    LeadStepState,
    render_svg,
    render_text,
    timeline_of_lead,
    timeline_of_shape,
)
from starlight_sequences.unsubscribe import UnsubscribeLinks, check_unsubscribe_target
from starlight_sequences.worker import run_worker

__all__ = ["COMMANDS", "EVENT_KINDS", "CommandError", "Session"]

EVENT_KINDS: dict[str, EventKind] = {
    "reply": EventKind.REPLY,
    "accepted": EventKind.CONNECTION_ACCEPTED,
    "declined": EventKind.CONNECTION_DECLINED,
    "bounce": EventKind.BOUNCE,
    "unsubscribe": EventKind.UNSUBSCRIBE,
    "ooo": EventKind.OUT_OF_OFFICE,
    "meeting": EventKind.MEETING_BOOKED,
}
"""The words ``starlight report`` takes, and the events they report."""

_ACTION_WORDS = {
    Action.EMAIL: "email",
    Action.LINKEDIN_CONNECT: "connection request",
    Action.LINKEDIN_MESSAGE: "LinkedIn message",
}


class CommandError(Exception):
    """A problem with how the command was called (exit ``code``: 2 usage, 1 otherwise)."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def say(text: str = "") -> None:
    """Write a line to stdout; control characters from users are shown escaped."""
    print(terminal_text(text))


def warn(text: str) -> None:
    """Write a line to stderr; control characters from users are shown escaped."""
    print(terminal_text(text), file=sys.stderr)


class Session:
    """One run of a subcommand: its arguments, where its files are, and its adapters.

    Args:
        args: the parsed command line.
        clock: the clock (the system clock, or one a test or host app passes to ``main``).
    """

    def __init__(self, args: argparse.Namespace, clock: Clock) -> None:
        self.args = args
        self.clock = clock
        self.workspace = WorkspaceId(
            args.workspace or os.environ.get("STARLIGHT_WORKSPACE") or "default"
        )
        self._closers: list[Callable[[], None]] = []

    @property
    def db(self) -> Path:
        """The database file (``--db`` or ``STARLIGHT_DB``)."""
        value = self.args.db or os.environ.get("STARLIGHT_DB")
        if not value:
            raise CommandError("no database: give --db PATH or set STARLIGHT_DB")
        return Path(value)

    @property
    def outbox(self) -> Path:
        """The outbox folder (``--outbox``; default: ``outbox/`` beside the database)."""
        return Path(self.args.outbox) if self.args.outbox else self.db.parent / "outbox"

    @property
    def task_file(self) -> Path:
        """The LinkedIn task file (``--tasks``; default: beside the database)."""
        if self.args.tasks:
            return Path(self.args.tasks)
        return self.db.parent / "linkedin-tasks.jsonl"

    def service(
        self, *, create: bool = False, drafter: Drafter | None = None, senders: bool = False
    ) -> CampaignService:
        """The service over the database; ``create`` makes the file if it is missing."""
        database = self.db
        if not database.exists():
            if not create:
                raise CommandError(
                    f"no database at {database} (it is made by `starlight create` or "
                    "`starlight credits top-up`); check --db or STARLIGHT_DB",
                    code=1,
                )
            database.parent.mkdir(parents=True, exist_ok=True)
        storage = SQLiteStorage(database)
        self._closers.append(storage.close)
        ledger = SQLiteCreditLedger(database)
        self._closers.append(ledger.close)
        email_sender: EmailSender | None = None
        linkedin_sender = None
        if senders:
            email_sender = self._email_sender()
            linkedin_sender = LinkedInTaskSender(LinkedInTaskFile(self.task_file))
        return CampaignService(
            storage=storage,
            ledger=ledger,
            drafter=drafter if drafter is not None else TemplateDrafter(),
            clock=self.clock,
            email_sender=email_sender,
            linkedin_sender=linkedin_sender,
            unsubscribe_url=self.unsubscribe(),
            send_without_unsubscribe=bool(self.args.no_unsubscribe),
        )

    def unsubscribe(self) -> Callable[[ScheduledSend], str] | None:
        """The unsubscribe target of every email: signed links to ``--unsubscribe-url`` (the
        secret from ``STARLIGHT_UNSUBSCRIBE_SECRET``), or ``--unsubscribe-mailto``."""
        url = self.args.unsubscribe_url or os.environ.get("STARLIGHT_UNSUBSCRIBE_URL")
        mailto = self.args.unsubscribe_mailto or os.environ.get("STARLIGHT_UNSUBSCRIBE_MAILTO")
        if url and mailto:
            raise CommandError("give --unsubscribe-url or --unsubscribe-mailto, not both")
        if url:
            secret = os.environ.get("STARLIGHT_UNSUBSCRIBE_SECRET", "")
            if not secret:
                raise CommandError(
                    "--unsubscribe-url needs the signing secret in STARLIGHT_UNSUBSCRIBE_SECRET "
                    "(at least 16 characters, e.g. from `openssl rand -hex 32`)"
                )
            return UnsubscribeLinks(base_url=url, secret=secret.encode("utf-8"))
        if mailto:
            target = check_unsubscribe_target(
                mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}",
                subject="--unsubscribe-mailto",
            )
            return lambda send: target
        return None

    @property
    def smtp(self) -> SMTPServer | None:
        """The SMTP server of ``run`` (``--smtp`` or ``STARLIGHT_SMTP_URL``), or None.

        Raises:
            CommandError: the URL is not a usable SMTP URL (it holds a password, say).
        """
        value = getattr(self.args, "smtp", None) or os.environ.get("STARLIGHT_SMTP_URL")
        if not value:
            return None
        try:
            server = parse_smtp_url(value)
        except ValueError as exc:
            raise CommandError(f"--smtp: {exc}") from None
        if self.args.smtp_user:
            server = attrs.evolve(server, username=self.args.smtp_user)
        return server

    def _email_sender(self) -> EmailSender:
        """SMTP when a server is configured, else the outbox folder."""
        server = self.smtp
        if server is None:
            return OutboxEmailSender(self.outbox, clock=self.clock)
        password = os.environ.get("STARLIGHT_SMTP_PASSWORD", "")
        if server.username and not password:
            raise CommandError(
                f"--smtp: {server} names the user {server.username!r}; set its password in "
                "the environment variable STARLIGHT_SMTP_PASSWORD"
            )
        if password and not server.username:
            raise CommandError(
                "--smtp: STARLIGHT_SMTP_PASSWORD is set but the URL names no user; give "
                "smtp+starttls://USER@HOST or --smtp-user"
            )
        context = None
        if self.args.smtp_cafile:
            context = ssl.create_default_context(cafile=self.args.smtp_cafile)
        sender = SMTPEmailSender(
            host=server.host,
            port=server.port,
            security=server.security,
            username=server.username,
            password=password,
            allow_plaintext_auth=self.args.smtp_plaintext_auth,
            timeout=self.args.smtp_timeout,
            ssl_context=context,
            clock=self.clock,
        )
        self._closers.append(sender.close)
        return sender

    def add_closer(self, close: Callable[[], None]) -> None:
        """Call ``close`` when the subcommand ends (before the database closes)."""
        self._closers.append(close)

    def close(self) -> None:
        """Close the database connections (and the SMTP connections of ``run``)."""
        for close in reversed(self._closers):
            close()
        self._closers.clear()


# --------------------------------------------------------------------------- inputs


def _leads(path: Path, *, skip_invalid: bool) -> tuple[Lead, ...]:
    """The good leads of a file; its problems are listed on stderr and, unless
    ``skip_invalid``, stop the command."""
    imported = read_leads(path)
    problems = [p.message for p in imported.problems]
    if problems:
        for problem in problems:
            warn(f"{path}: {problem}")
        if not skip_invalid:
            raise InvalidInput(
                f"{path}: {len(problems)} problem(s) listed above; fix the file, or pass "
                f"--skip-invalid to go on with the {len(imported.leads)} good lead(s)"
            )
        warn(f"{path}: skipping the rows above; going on with {len(imported.leads)} lead(s)")
    return imported.leads


def _drafter(args: argparse.Namespace) -> Drafter:
    if args.drafter == "template":
        return TemplateDrafter()
    if not args.base_url or not args.model:
        raise CommandError("--drafter openai needs --base-url and --model")
    from starlight_sequences.adapters.openai_drafter import OpenAICompatibleDrafter

    return OpenAICompatibleDrafter(
        base_url=args.base_url,
        model=args.model,
        api_key=os.environ.get("OPENAI_API_KEY", ""),
    )


def _text_option(value: str | None, file: str | None, what: str) -> str | None:
    if value is not None and file is not None:
        raise CommandError(f"give --{what} or --{what}-file, not both")
    if file is None:
        return value
    if file == "-":
        return sys.stdin.read()
    return Path(file).read_text(encoding="utf-8")


def _name(lead: Lead) -> str:
    return " ".join(part for part in (lead.first_name, lead.last_name) if part) or lead.id


def _campaign(args: argparse.Namespace) -> CampaignId:
    return CampaignId(args.campaign)


# --------------------------------------------------------------------------- leads and credits


def cmd_import(session: Session, args: argparse.Namespace) -> int:
    """Check a CSV of leads; write the good ones to a JSON lead file."""
    source = Path(args.csv)
    imported = read_leads(source)
    target = Path(args.out) if args.out else source.with_suffix(".leads.json")
    if imported.leads:
        write_lead_file(target, imported.leads)
    for problem in imported.problems:
        warn(f"{source}: {problem.message}")
    rows_with_problems = len({(p.row, p.lead) for p in imported.problems})
    say(
        f"{len(imported.leads)} lead(s) imported, {rows_with_problems} row(s) with problems"
        + (f"; written to {target}" if imported.leads else "; nothing written")
    )
    countries = collections.Counter(lead.country or "(campaign default)" for lead in imported.leads)
    if countries:
        say("By country: " + ", ".join(f"{c} {n}" for c, n in sorted(countries.items())))
    return 1 if imported.problems else 0


def cmd_estimate(session: Session, args: argparse.Namespace) -> int:
    """Print what a campaign would cost."""
    shape = read_shape(args.shape)
    leads = _leads(Path(args.leads), skip_invalid=args.skip_invalid)
    service = session.service() if _has_db(session) else None
    estimate = (service or _offline_service(session)).estimate(shape, leads)
    if args.json:
        available = service.balance(session.workspace).available if service else None
        return _cli_json.emit(_cli_json.estimate_json(estimate, len(leads), available))
    say(f"Shape {shape.key}: {len(shape.steps)} steps; {len(leads)} lead(s)")
    say(f"Reachable: {len(estimate.leads)}; excluded: {len(estimate.excluded)} (they cost nothing)")
    say(f"Drafting:    {estimate.drafts:>7} messages  {estimate.drafting_cost:>9} credits")
    say(f"Sends (max): {estimate.sends:>7} sends     {estimate.max_send_cost:>9} credits")
    say(f"Total (max): {'':>16}  {estimate.total:>9} credits")
    if args.per_lead:
        say()
        for line in table(
            ["LEAD", "DRAFTS", "DRAFTING", "SENDS", "SENDS MAX", "TOTAL"],
            [
                (e.lead_id, e.drafts, e.drafting_cost, e.sends, e.max_send_cost, e.total)
                for e in estimate.leads
            ],
            right=(1, 2, 3, 4, 5),
        ):
            say(line)
    else:
        groups = collections.Counter((e.drafts, e.sends, e.total) for e in estimate.leads)
        if groups:
            say("Per lead:")
            for (drafts, sends, total), count in sorted(groups.items()):
                say(f"  {count:>7} lead(s) × {total} credits ({drafts} draft(s), {sends} send(s))")
    if estimate.excluded:
        say("Excluded:")
        for excluded in estimate.excluded[: args.limit or None]:
            say(f"  {excluded.lead_id}: {plain(excluded.message)}")
        _more(len(estimate.excluded), args.limit)
    if service is not None:
        account = service.balance(session.workspace)
        say(f"Balance of workspace {session.workspace!r}: {account.available} available")
    return 0


def _has_db(session: Session) -> bool:
    return bool(session.args.db or os.environ.get("STARLIGHT_DB")) and session.db.exists()


def _offline_service(session: Session) -> CampaignService:
    from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage

    return CampaignService(
        storage=InMemoryStorage(),
        ledger=InMemoryCreditLedger(),
        drafter=TemplateDrafter(),
        clock=session.clock,
    )


def _more(total: int, limit: int) -> None:
    if limit and total > limit:
        say(f"  … and {total - limit} more (--limit 0 shows all)")


def cmd_credits(session: Session, args: argparse.Namespace) -> int:
    """Show the balance and the journal, or top up."""
    if args.credits_command == "top-up":
        if args.amount <= 0:
            raise CommandError("top-up: the amount must be a positive whole number")
        service = session.service(create=True)
        account = service.top_up(session.workspace, args.amount, args.note)
        if args.json:
            return _cli_json.emit(_cli_json.account_json(account))
        say(
            f"Workspace {session.workspace!r}: +{args.amount} credits; "
            f"{account.available} available, {account.reserved} reserved"
        )
        return 0
    service = session.service()
    account = service.balance(session.workspace)
    campaign = CampaignId(args.campaign) if args.campaign else None
    movements = service.movements(session.workspace, campaign)
    if args.json:
        return _cli_json.emit(
            {
                **_cli_json.account_json(account),
                "movements": [_cli_json.movement_json(m) for m in movements],
            }
        )
    say(
        f"Workspace {session.workspace!r}: {account.available} available, "
        f"{account.reserved} reserved"
    )
    if movements:
        say()
        for line in table(
            ["KIND", "AMOUNT", "CAMPAIGN", "LEAD", "NOTE"],
            [
                (m.kind.value, m.amount, m.campaign_id or "-", m.lead_id or "-", m.note)
                for m in movements
            ],
            right=(1,),
        ):
            say(line)
    return 0


# --------------------------------------------------------------------------- create and review


def _check_mailbox_options(args: argparse.Namespace) -> None:
    """The ``--warm-up*`` and ``--mailbox-*`` options of ``create`` need what they refine."""
    ramp_only = ("warm_up_since", "mailbox_country", "mailbox_subdivision")
    for name in ramp_only:
        if getattr(args, name) is not None and args.warm_up is None:
            raise CommandError(f"--{name.replace('_', '-')} needs --warm-up START:STEP:CEILING")
    if not args.mailbox:
        for name in ("warm_up", "mailbox_timezone"):
            if getattr(args, name) is not None:
                raise CommandError(f"--{name.replace('_', '-')} needs --mailbox ADDRESS")


def _mailbox(args: argparse.Namespace, now: dt.datetime, address: str) -> EmailIdentity:
    """One ``--mailbox`` of ``create``, with the ``--mailbox-*`` and ``--warm-up*`` options."""
    if "@" not in address or any(c in address for c in " \r\n<>"):
        raise CommandError(f"--mailbox {address!r} is not an email address")
    timezone = args.mailbox_timezone or "UTC"
    zone = load_timezone(timezone, subject="--mailbox-timezone")
    warm_up = None
    if args.warm_up is not None:
        start, step, ceiling = args.warm_up
        warm_up = WarmUp(
            start=start,
            step=step,
            ceiling=ceiling,
            since=args.warm_up_since or now.astimezone(zone).date(),
            country=args.mailbox_country,
            subdivision=args.mailbox_subdivision,
        )
    mailbox = EmailIdentity(
        id=SenderId(address),
        address=address,
        display_name=args.mailbox_name or "",
        timezone=timezone,
    )
    if warm_up is None:
        return mailbox
    # Once ramped up, the mailbox sends at the ceiling: that is its daily cap.
    return attrs.evolve(mailbox, daily_cap=warm_up.ceiling, warm_up=warm_up)


def cmd_create(session: Session, args: argparse.Namespace) -> int:
    """Create a campaign: enrol the leads and draft every message, for review."""
    brief = _text_option(args.brief, args.brief_file, "brief")
    if brief is None:
        raise CommandError("create needs --brief TEXT or --brief-file FILE")
    shape = read_shape(args.shape)
    leads = _leads(Path(args.leads), skip_invalid=args.skip_invalid)
    if args.default_country:
        validate_country(args.default_country, subject="--default-country")
    if args.default_timezone:
        load_timezone(args.default_timezone, subject="--default-timezone")
    settings = CampaignSettings(
        default_country=args.default_country.upper() if args.default_country else None,
        default_timezone=args.default_timezone,
        seed=args.seed,
    )
    mailboxes, accounts = _sender_pools(args, session.clock.now())
    service = session.service(create=True, drafter=_drafter(args))
    progress = DraftingProgress(sys.stderr)
    try:
        report = service.create_campaign(
            session.workspace,
            name=args.name,
            brief=brief,
            shape=shape,
            leads=leads,
            email_identities=mailboxes,
            linkedin_identities=accounts,
            settings=settings,
            campaign_id=CampaignId(args.campaign_id) if args.campaign_id else None,
            progress=progress,
        )
    finally:
        progress.finish()
    campaign = report.campaign
    say(f"Created campaign {campaign.id} ({plain(campaign.name)}), shape {campaign.shape.key}")
    say(
        f"  {report.enrolled} enrolled, {len(report.excluded)} excluded, {report.drafts} "
        f"messages drafted ({report.drafting_credits} credits)"
    )
    for excluded in report.excluded[: args.limit or None]:
        say(f"  excluded {excluded.lead_id}: {plain(excluded.message)}")
    _more(len(report.excluded), args.limit)
    if report.needs_attention:
        say(f"  {len(report.needs_attention)} draft(s) need attention:")
        for draft in report.needs_attention[: args.limit or None]:
            say(f"    {draft.lead_id} step {draft.step}: {plain(draft.problem)}")
        _more(len(report.needs_attention), args.limit)
    say(f"Next: starlight preview {campaign.id}, then starlight approve {campaign.id}")
    return 0


def _sender_pools(
    args: argparse.Namespace, now: dt.datetime
) -> tuple[list[EmailIdentity], list[LinkedInIdentity]]:
    """The mailboxes and LinkedIn accounts of ``create``: ``--senders FILE``, then each
    ``--mailbox`` (with the ``--mailbox-*`` and ``--warm-up*`` options) and
    ``--linkedin-account`` (repeatable: a pool)."""
    _check_mailbox_options(args)
    mailboxes, accounts = read_senders(Path(args.senders)) if args.senders else ([], [])
    for address in args.mailbox or ():
        mailboxes.append(_mailbox(args, now, address))
    for account in args.linkedin_account or ():
        accounts.append(LinkedInIdentity(id=SenderId(account), premium=args.linkedin_premium))
    return mailboxes, accounts


def cmd_remove_sender(session: Session, args: argparse.Namespace) -> int:
    """Take a mailbox or LinkedIn account out of a campaign's pool."""
    service = session.service()
    campaign = service.remove_sender(
        session.workspace, _campaign(args), args.sender, move_started=args.move_started
    )
    moved = "every lead" if args.move_started else "leads it has not written to yet"
    say(f"Removed {args.sender} from campaign {campaign.id}; {moved} moved to the others")
    return 0


def cmd_preview(session: Session, args: argparse.Namespace) -> int:
    """Show recipients, their steps and dates, and their drafts."""
    service = session.service()
    lead_id = LeadId(args.lead) if args.lead else None
    preview = service.preview(session.workspace, _campaign(args), lead_id)
    campaign = preview.campaign
    if lead_id is not None and not preview.recipients:
        left_out = [e for e in preview.excluded if e.lead_id == lead_id]
        if left_out:
            if args.json:
                return _cli_json.emit(_cli_json.preview_json(preview))
            say(f"{lead_id} is excluded: {plain(left_out[0].message)}")
            return 0
        raise CommandError(f"campaign {campaign.id!r} has no recipient {lead_id!r}", code=1)
    if args.json:
        return _cli_json.emit(_cli_json.preview_json(preview))
    say(
        f"Campaign {campaign.id} ({plain(campaign.name)}): {campaign.status.value}, shape "
        f"{campaign.shape.key}; {len(preview.recipients)} recipient(s), "
        f"{len(campaign.excluded)} excluded"
    )
    if lead_id is None and preview.last_send_at is not None:
        say(f"Last send (forecast): {format_utc(preview.last_send_at)}{_ramp_note(campaign)}")
    shown = preview.recipients if lead_id or not args.limit else preview.recipients[: args.limit]
    pooled = len(campaign.email_identities) > 1 or len(campaign.linkedin_identities) > 1
    for recipient in shown:
        _say_recipient(recipient, full_drafts=lead_id is not None, pooled=pooled)
    if lead_id is None:
        _more(len(preview.recipients), args.limit)
        if campaign.excluded:
            say()
            say("Excluded:")
            for excluded in campaign.excluded[: args.limit or None]:
                say(f"  {excluded.lead_id}: {plain(excluded.message)}")
            _more(len(campaign.excluded), args.limit)
    attention = preview.needs_attention
    if attention:
        say()
        say(f"{len(attention)} draft(s) need attention (edit, regenerate or exclude them):")
        for draft in attention[: args.limit or None]:
            say(f"  {draft.lead_id} step {draft.step}: {plain(draft.problem)}")
        _more(len(attention), args.limit)
    return 0


def _ramp_note(campaign: Campaign) -> str:
    mailbox = campaign.email_identity
    if mailbox is None or mailbox.warm_up is None:
        return ""
    ramp = mailbox.warm_up
    return (
        f", mailbox {plain(mailbox.id)} warming up: {ramp.start} a day from {ramp.since}, "
        f"+{ramp.step} each business day, at most {ramp.ceiling}"
    )


def _say_recipient(recipient: RecipientPreview, *, full_drafts: bool, pooled: bool = False) -> None:
    """One recipient of the preview: its line, its steps, and (``full_drafts``) its drafts."""
    lead = recipient.lead
    say()
    say(
        f"{lead.id}  {plain(_name(lead))}, {plain(lead.company) or '-'} — {lead.country} "
        f"{lead.timezone} — {recipient.status.value}"
        + (f" ({plain(recipient.reason)})" if recipient.reason else "")
    )
    if recipient.assumed_timezone:
        say(f"  timezone assumed: {recipient.assumed_timezone}, {plain(recipient.timezone_reason)}")
    rows = []
    for step in recipient.steps:
        when_local = (
            format_local(step.due_local, lead.timezone)
            if step.due_local
            else ("after acceptance" if step.gated else "-")
        )
        if step.draft is None:
            text = "(no note)" if step.action is Action.LINKEDIN_CONNECT else "-"
        elif step.draft.needs_attention:
            text = f"NEEDS ATTENTION: {step.draft.problem}"
        else:
            text = step.draft.subject or step.draft.body
        rows.append(
            (
                step.step,
                _ACTION_WORDS[step.action],
                when_local,
                format_utc(step.due_utc),
                step.status.value if step.status else "-",
                _shorten(text, 60),
                step.variant or "-",
                step.sender_id or "-",
            )
        )
    # the VARIANT column only for a shape with an A/B step, SENDER only with a pool
    columns = list(range(6))
    columns += [6] if any(step.variant for step in recipient.steps) else []
    columns += [7] if pooled else []
    header = ["STEP", "ACTION", "LOCAL", "UTC", "STATUS", "DRAFT", "VARIANT", "SENDER"]
    for line in table([header[i] for i in columns], [[row[i] for i in columns] for row in rows]):
        say("  " + line)
    if full_drafts:
        for step in recipient.steps:
            if step.draft is None or not step.draft.body:
                continue
            say()
            say(f"  Step {step.step}, {_ACTION_WORDS[step.action]} (v{step.draft.version}):")
            if step.draft.subject is not None:
                say(f"    Subject: {plain(step.draft.subject)}")
            for body_line in step.draft.body.splitlines():
                say(f"    | {plain(body_line)}")


def _shorten(text: str, limit: int) -> str:
    flat = plain(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def cmd_edit(session: Session, args: argparse.Namespace) -> int:
    """Replace a draft's subject and/or body."""
    body = _text_option(args.body, args.body_file, "body")
    if args.subject is None and body is None:
        raise CommandError("edit needs --subject, --body or --body-file")
    service = session.service()
    draft = service.edit_draft(
        session.workspace,
        _campaign(args),
        LeadId(args.lead),
        args.step,
        subject=args.subject,
        body=body,
    )
    say(f"Draft of {draft.lead_id} step {draft.step} saved (version {draft.version})")
    return 0


def cmd_regenerate(session: Session, args: argparse.Namespace) -> int:
    """Draft one message again (charged as a draft)."""
    service = session.service(drafter=_drafter(args))
    draft = service.regenerate_draft(
        session.workspace, _campaign(args), LeadId(args.lead), args.step
    )
    state = f"needs attention: {draft.problem}" if draft.needs_attention else "ready"
    say(f"Draft of {draft.lead_id} step {draft.step} redrafted (version {draft.version}), {state}")
    if draft.subject is not None:
        say(f"  Subject: {plain(draft.subject)}")
    for body_line in draft.body.splitlines():
        say(f"  | {plain(body_line)}")
    return 0


def cmd_exclude(session: Session, args: argparse.Namespace) -> int:
    """Leave a recipient out of the campaign."""
    service = session.service()
    enrolment = service.exclude_recipient(
        session.workspace, _campaign(args), LeadId(args.lead), args.reason
    )
    say(f"{enrolment.lead_id} excluded from {enrolment.campaign_id}: {plain(enrolment.reason)}")
    return 0


def cmd_approve(session: Session, args: argparse.Namespace) -> int:
    """Approve the campaign (or one recipient): reserve the send credits and schedule."""
    service = session.service()
    if args.lead:
        enrolment = service.approve_recipient(session.workspace, _campaign(args), LeadId(args.lead))
        say(f"{enrolment.lead_id} approved in {enrolment.campaign_id}")
        return 0
    if service.unsubscribe_url is None and not service.send_without_unsubscribe:
        campaign_id = _campaign(args)
        sends_email = any(
            step.action.channel is Channel.EMAIL
            for enrolment in service.preview(session.workspace, campaign_id).recipients
            for step in enrolment.steps
        )
        if sends_email:
            raise CommandError(
                f"campaign {campaign_id} sends email, and every email needs an unsubscribe "
                "target: give --unsubscribe-url (with STARLIGHT_UNSUBSCRIBE_SECRET) or "
                "--unsubscribe-mailto, or --no-unsubscribe"
            )
    campaign = service.approve(session.workspace, _campaign(args))
    account = service.balance(session.workspace)
    say(
        f"Campaign {campaign.id} is {campaign.status.value}; approved at "
        f"{format_utc(campaign.approved_at)}. {account.reserved} credits reserved, "
        f"{account.available} available."
    )
    say("Sends go out while `starlight run` is running.")
    return 0


def cmd_control(session: Session, args: argparse.Namespace) -> int:
    """Pause, resume or cancel a campaign."""
    service = session.service()
    action = {
        "pause": service.pause_campaign,
        "resume": service.resume_campaign,
        "cancel": service.cancel_campaign,
    }[args.command]
    campaign = action(session.workspace, _campaign(args))
    say(f"Campaign {campaign.id} is {campaign.status.value}")
    return 0


def cmd_resume_sender(session: Session, args: argparse.Namespace) -> int:
    """Resume a mailbox the bounce breaker held."""
    hold = session.service().resume_sender(session.workspace, args.sender)
    say(f"Sender {hold.sender_id} resumed; it was held for {hold.reason}")
    return 0


def cmd_campaigns(session: Session, args: argparse.Namespace) -> int:
    """List the workspace's campaigns."""
    service = session.service()
    campaigns = service.campaigns(session.workspace)
    if args.json:
        return _cli_json.emit(
            {
                "workspace": session.workspace,
                "campaigns": [_cli_json.campaign_json(c) for c in campaigns],
            }
        )
    if not campaigns:
        say(f"No campaigns in workspace {session.workspace!r}")
        return 0
    for line in table(
        ["CAMPAIGN", "NAME", "STATUS", "SHAPE", "CREATED", "APPROVED"],
        [
            (
                c.id,
                c.name,
                c.status.value,
                c.shape.key,
                format_utc(c.created_at),
                format_utc(c.approved_at),
            )
            for c in campaigns
        ],
    ):
        say(line)
    return 0


# --------------------------------------------------------------------------- running


def _report_words(report: DispatchReport) -> str:
    parts = [
        f"{value} {name.replace('_', ' ')}"
        for name, value in (
            ("sent", report.sent),
            ("retried", report.retried),
            ("failed", report.failed),
            ("skipped", report.skipped),
            ("timed_out", report.timed_out),
            ("deferred", report.deferred),
            ("lease_lost", report.lease_lost),
            ("handed_back", report.handed_back),
        )
        if value
    ]
    return ", ".join(parts) or "nothing due"


def cmd_run(session: Session, args: argparse.Namespace) -> int:
    """Run the dispatcher until stopped (SIGTERM, SIGINT), or one pass with ``--once``."""
    if args.poll < 0 or args.batch < 1:
        raise CommandError("--poll must be >= 0 and --batch >= 1")
    if not 1 <= args.in_flight <= args.batch:
        raise CommandError("--in-flight must be from 1 to --batch")
    service = session.service(senders=True)
    if service.unsubscribe_url is None and not service.send_without_unsubscribe:
        raise CommandError(
            "every email needs an unsubscribe target: give --unsubscribe-url (with "
            "STARLIGHT_UNSUBSCRIBE_SECRET) or --unsubscribe-mailto, or --no-unsubscribe"
        )
    worker_id = args.worker_id or f"{socket.gethostname()}:{os.getpid()}"

    def on_pass(report: DispatchReport) -> None:
        if report.handled or args.once:
            say(f"{format_utc(session.clock.now())}  {_report_words(report)}")
            sys.stdout.flush()

    if not args.once:
        server = session.smtp
        email = f"email over {server}" if server else f"outbox {session.outbox}"
        say(
            f"Worker {worker_id} dispatching from {session.db} ({email}, "
            f"LinkedIn tasks {session.task_file}); Ctrl-C or SIGTERM stops it"
        )
        sys.stdout.flush()
    stats = run_worker(
        service,
        worker_id=worker_id,
        poll_interval=args.poll,
        batch=args.batch,
        in_flight=args.in_flight,
        workspace_id=session.workspace if args.this_workspace_only else None,
        once=args.once,
        on_pass=on_pass,
    )
    if not args.once:
        say(f"Stopped after {stats.passes} pass(es): {_report_words(stats.totals)}")
    return 0


# --------------------------------------------------------------------------- monitoring


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    """Show a campaign's contacts, their steps and next sends, and the counts."""
    service = session.service()
    report = service.status(session.workspace, _campaign(args))
    campaign = report.campaign
    if args.html:
        _write_page(service, session.workspace, campaign.id, Path(args.html), args.limit)
    if args.json:
        waiting = service.waiting_on_connections(session.workspace, campaign.id)
        return _cli_json.emit(_cli_json.status_json(report, len(waiting)))
    say(
        f"Campaign {campaign.id} ({plain(campaign.name)}): {campaign.status.value}, shape "
        f"{campaign.shape.key}, {len(report.contacts)} contact(s)"
    )
    for hold in report.held_senders:
        say(
            f"Sender {hold.sender_id} is held by the bounce breaker since "
            f"{format_utc(hold.held_at)}: {hold.reason}; nothing goes out from it until "
            f"`starlight resume-sender {hold.sender_id}`"
        )
    contacts = report.contacts if not args.limit else report.contacts[: args.limit]
    if contacts:
        say()
        for line in table(
            ["LEAD", "STEP", "ACTION", "STATUS", "SEND", "NEXT (LOCAL)", "NEXT (UTC)", "REASON"],
            [
                (
                    c.lead.id,
                    c.step,
                    _ACTION_WORDS[c.action],
                    c.status.value,
                    c.send_status.value if c.send_status else "-",
                    format_local(c.next_send_local, c.lead.timezone),
                    format_utc(c.next_send_utc),
                    c.reason or "",
                )
                for c in contacts
            ],
            right=(1,),
        ):
            say(line)
        _more(len(report.contacts), args.limit)
    if report.counts:
        say()
        say("Sends per step and status:")
        for line in table(["STEP", "STATUS", "COUNT"], report.counts, right=(0, 2)):
            say("  " + line)
    _say_variants(report)
    waiting = service.waiting_on_connections(session.workspace, campaign.id)
    say()
    say(f"Waiting on connections: {len(waiting) or 'none'}")
    if args.html:
        say(f"Monitoring page written to {args.html}")
    return 0


def _write_page(
    service: CampaignService, workspace: WorkspaceId, campaign: CampaignId, path: Path, limit: int
) -> None:
    """Write the campaign's monitoring page to ``path`` (timelines of ``limit`` leads, 0: all).

    Raises:
        CommandError: the file cannot be written (a directory, a missing folder, no
            permission); exit code 1.
    """
    page = campaign_page(service, workspace, campaign, max_timelines=limit or None)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise CommandError(
            f"--html {path}: cannot write the monitoring page there: {exc.strerror or exc}",
            code=1,
        ) from exc


def _say_variants(report: CampaignStatusReport) -> None:
    """The A/B table of ``status``: per variant, its results and the 95% Wilson interval."""
    if not report.variants:
        return
    say()
    say("A/B variants (reply rate with its 95% Wilson interval):")
    rows = []
    for result in report.variants:
        low, high = result.interval
        rows.append(
            (
                result.step,
                result.key,
                result.leads,
                result.sent,
                result.replied,
                result.bounced,
                f"{result.reply_rate:.1%}",
                f"{low:.1%}–{high:.1%}",
                "winner" if result.winner else "",
            )
        )
    header = ["STEP", "VARIANT", "LEADS", "SENT", "REPLIED", "BOUNCED", "RATE", "95% CI", ""]
    for line in table(header, rows, right=(0, 2, 3, 4, 5, 6)):
        say("  " + line)


def cmd_timeline(session: Session, args: argparse.Namespace) -> int:
    """Print the campaign's timeline (of the shape, or of one lead); optionally as SVG."""
    service = session.service()
    if args.lead:
        enrolment, sends = service.lead_timeline_states(
            session.workspace, _campaign(args), LeadId(args.lead)
        )
        cadence = {step.number for step in enrolment.steps}
        states = [
            LeadStepState(step=s.step, status=s.status, at=s.sent_at or s.due_at, reason=s.reason)
            for s in sends
            if s.step in cadence
        ]
        timeline = timeline_of_lead(
            _name(enrolment.lead), enrolment.steps, states, timezone=enrolment.lead.timezone
        )
    else:
        campaign = service.storage.get_campaign(session.workspace, _campaign(args))
        timeline = timeline_of_shape(campaign.shape)
    if args.svg:
        Path(args.svg).write_text(render_svg(timeline), encoding="utf-8")
    if args.json:
        return _cli_json.emit(_cli_json.timeline_json(timeline))
    say(render_text(timeline).rstrip("\n"))
    if args.svg:
        say(f"SVG written to {args.svg}")
    return 0


def cmd_tasks(session: Session, args: argparse.Namespace) -> int:
    """Show the Waiting-on-connections list and the pending LinkedIn tasks; mark one done.

    Both only for the session's workspace: another workspace's task is not found.
    """
    queue = LinkedInTaskFile(session.task_file)
    if args.tasks_command == "done":
        task = queue.complete(session.workspace, args.task_id)
        say(
            f"Task {task.id} done: {_ACTION_WORDS[task.action]} to "
            f"{plain(task.recipient_name)} ({task.campaign_id} / {task.lead_id})"
        )
        return 0
    service = session.service()
    campaign = CampaignId(args.campaign) if args.campaign else None
    waiting = service.waiting_on_connections(session.workspace, campaign)
    pending = (
        [
            t
            for t in queue.pending(session.workspace)
            if campaign is None or t.campaign_id == campaign
        ]
        if session.task_file.exists()
        else []
    )
    if args.json:
        return _cli_json.emit(
            {
                "waiting_on_connections": [_cli_json.waiting_json(w) for w in waiting],
                "task_file": str(session.task_file),
                "pending_tasks": [_cli_json.task_json(t) for t in pending],
            }
        )
    say(f"Waiting on connections ({len(waiting)})")
    if waiting:
        for line in table(
            [
                "CAMPAIGN",
                "LEAD",
                "NAME",
                "STEP",
                "REQUEST SENT (LOCAL)",
                "TIMES OUT (LOCAL)",
                "UTC",
            ],
            [
                (
                    w.campaign_id,
                    w.lead.id,
                    _name(w.lead),
                    w.step,
                    format_local(w.since, w.lead.timezone),
                    format_local(w.times_out_at, w.lead.timezone),
                    format_utc(w.times_out_at),
                )
                for w in waiting
            ],
            right=(3,),
        ):
            say("  " + line)
        say("  (report an acceptance with: starlight report accepted LEAD --campaign CAMPAIGN)")
    say()
    say(f"Pending LinkedIn tasks ({len(pending)}) in {session.task_file}")
    for task in pending:
        say(
            f"  {task.id}  {_ACTION_WORDS[task.action]} to {plain(task.recipient_name)}  "
            f"{task.profile_url}  ({task.campaign_id} / {task.lead_id}, step {task.step})"
        )
        say(f"    {plain(task.instructions)}")
        for text_line in (task.text or "").splitlines():
            say(f"    | {plain(text_line)}")
    if pending:
        say("  (mark one done with: starlight tasks done TASK_ID)")
    return 0


def cmd_report(session: Session, args: argparse.Namespace) -> int:
    """Report an inbound event about a lead (reply, acceptance, bounce, ...)."""
    kind = EVENT_KINDS[args.kind]
    if args.return_date is not None and kind is not EventKind.OUT_OF_OFFICE:
        raise CommandError("--return-date goes with `report ooo` only")
    at: dt.datetime = args.at if args.at is not None else session.clock.now()
    service = session.service()
    changed = service.report_event(
        session.workspace,
        InboundEvent(
            kind=kind,
            lead_id=LeadId(args.lead),
            at=at,
            campaign_id=CampaignId(args.campaign) if args.campaign else None,
            key=args.key or "",
            return_date=args.return_date,
            detail=args.detail or "",
        ),
    )
    if not changed:
        say(f"{kind.value} of {args.lead}: already reported; nothing changed")
        return 0
    say(f"{kind.value} of {args.lead} at {format_utc(at)} recorded:")
    for enrolment in changed:
        say(
            f"  {enrolment.campaign_id} / {enrolment.lead_id}: {enrolment.status.value}"
            + (f" ({plain(enrolment.reason)})" if enrolment.reason else "")
        )
    return 0


def _ingested(name: str, result: IngestResult) -> str:
    """One line about one ingested message."""
    who = f"{result.lead_id} ({result.matched_by.value})" if result.lead_id else "nobody"
    done = (
        f"{result.event.value} applied"
        if result.applied and result.event is not None
        else "nothing changed"
    )
    return f"{plain(name)}: {result.kind.value} from {plain(who)}; {done}: {plain(result.reason)}"


def cmd_inbox(session: Session, args: argparse.Namespace) -> int:
    """Poll an IMAP folder and ingest every new message, once or until stopped."""
    host = args.imap_host or os.environ.get("STARLIGHT_IMAP_HOST")
    user = args.imap_user or os.environ.get("STARLIGHT_IMAP_USER")
    password = os.environ.get("STARLIGHT_IMAP_PASSWORD", "")
    if not host or not user:
        raise CommandError("inbox needs --imap-host and --imap-user (or STARLIGHT_IMAP_HOST/_USER)")
    if not password:
        raise CommandError("inbox needs the password in STARLIGHT_IMAP_PASSWORD")
    if args.poll <= 0:
        raise CommandError("--poll must be positive")
    service = session.service()
    inbox = IMAPInbox(
        host,
        args.imap_port,
        username=user,
        password=password,
        security=args.imap_security,
        allow_plaintext_login=args.imap_plaintext_login,
        folder=args.folder,
        move_to=args.move_to,
        skip_existing=args.skip_existing,
    )
    session.add_closer(inbox.close)
    stop = threading.Event()
    with _stopping_on_signals(stop):
        while True:
            try:
                report = inbox.poll(
                    lambda raw: say(
                        _ingested(inbox.mailbox, service.ingest_email(session.workspace, raw))
                    ),
                    storage=service.storage,
                    workspace_id=session.workspace,
                )
            except MailboxUnavailable as exc:
                if args.once:
                    raise
                warn(f"starlight inbox: {exc}; trying again in {args.poll:g} s")
            else:
                if args.once:
                    say(f"{plain(report.mailbox)}: {len(report.handled)} message(s) read")
                    return 0
                if report.more:
                    continue
            sys.stdout.flush()
            if stop.wait(args.poll):
                return 0


@contextlib.contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (main thread only) while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_ingest(session: Session, args: argparse.Namespace) -> int:
    """Read raw inbound emails and apply what each means; one line per message."""
    service = session.service()
    for name in args.files:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
        else:
            with open(name, "rb") as handle:
                raw = handle.read(MAX_MESSAGE_BYTES + 1)
        say(_ingested(name, service.ingest_email(session.workspace, raw)))
    return 0


COMMANDS: dict[str, Callable[[Session, argparse.Namespace], int]] = {
    "approve": cmd_approve,
    "campaigns": cmd_campaigns,
    "cancel": cmd_control,
    "create": cmd_create,
    "credits": cmd_credits,
    "edit": cmd_edit,
    "estimate": cmd_estimate,
    "exclude": cmd_exclude,
    "import": cmd_import,
    "inbox": cmd_inbox,
    "ingest": cmd_ingest,
    "pause": cmd_control,
    "preview": cmd_preview,
    "regenerate": cmd_regenerate,
    "remove-sender": cmd_remove_sender,
    "report": cmd_report,
    "resume": cmd_control,
    "resume-sender": cmd_resume_sender,
    "run": cmd_run,
    "status": cmd_status,
    "tasks": cmd_tasks,
    "timeline": cmd_timeline,
}
"""Subcommand name → the function that runs it."""
