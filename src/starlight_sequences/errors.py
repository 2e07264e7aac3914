"""Every error the library raises, under one root.

Each error names the offending object and field in its message and also subclasses the
builtin that fits, so ``except ValueError`` in a host app keeps working::

    StarlightError
    ├── InvalidInput (ValueError)                 bad input from the caller
    │   ├── UnknownCountry                        country code the holidays package lacks
    │   ├── UnknownSubdivision                    subdivision the country lacks
    │   ├── UnknownTimezone                       not an IANA zone name
    │   ├── InvalidBusinessHours                  open >= close, bad weekday, ...
    │   ├── InvalidStaggering                     negative spacing, zero cap, ...
    │   ├── InvalidLead                           a lead's field (names lead and field)
    │   │   └── MissingLocation                   no country/timezone on lead or campaign
    │   ├── InvalidShape                          a send shape (names the step)
    │   ├── InvalidDraft                          a draft breaks its channel's limits
    │   ├── InvalidSettings                       campaign or workspace settings
    │   │   ├── InvalidIdentity                   a sender identity's field (names both)
    │   │   ├── InvalidWarmUp                     a mailbox warm-up ramp's field
    │   │   └── InvalidBreakerSettings            a bounce breaker's field (names it)
    │   ├── InvalidEvent                          an inbound event that cannot apply
    │   └── InvalidUnsubscribeToken               an unsubscribe link not signed by us
    ├── NotFound (LookupError)                    something asked for does not exist
    │   ├── UnknownShape                          lists the known keys
    │   ├── CampaignNotFound
    │   ├── EnrolmentNotFound
    │   ├── DraftNotFound
    │   ├── UnknownContact                        an inbound event for nobody we wrote to
    │   ├── SenderNotHeld                         resuming a sender the breaker does not hold
    │   └── UnknownSender                         a sender id not in a campaign's pools
    ├── InsufficientCredits                       carries needed and available
    ├── IllegalTransition (RuntimeError)          e.g. approving a cancelled campaign
    │   ├── DraftsNeedAttention                   approval refused; lists the drafts
    │   └── LastSender                            removing the only sender leads still need
    ├── LeaseLost (RuntimeError)                  a worker's claim expired or was taken
    ├── AdapterError (RuntimeError)               an adapter cannot work (config, auth)
    │   ├── StorageError                          the storage backend failed
    │   └── MailboxUnavailable                    the mail server is unreachable for now
    └── ConcurrentUpdate (RuntimeError)           a record changed since it was read; retry
"""

from __future__ import annotations

from collections.abc import Iterable


class StarlightError(Exception):
    """Root of every error starlight_sequences raises."""


class InvalidInput(StarlightError, ValueError):
    """Input from the caller is malformed or out of range."""


class UnknownCountry(InvalidInput):
    """A country code that the ``holidays`` package does not know."""

    def __init__(self, country: str, *, subject: str = "calendar") -> None:
        self.country = country
        super().__init__(
            f"{subject}: country {country!r} is not an ISO 3166-1 alpha-2 code "
            "that the holidays package supports"
        )


class UnknownSubdivision(InvalidInput):
    """A subdivision code that the country does not have in the ``holidays`` package."""

    def __init__(
        self,
        country: str,
        subdivision: str,
        known: Iterable[str] = (),
        *,
        subject: str = "calendar",
    ) -> None:
        self.country = country
        self.subdivision = subdivision
        self.known = tuple(sorted(known))
        hint = f"; known: {', '.join(self.known)}" if self.known else ""
        super().__init__(
            f"{subject}: subdivision {subdivision!r} is not a subdivision of {country}{hint}"
        )


class UnknownTimezone(InvalidInput):
    """A timezone that is not an IANA zone name."""

    def __init__(self, timezone: str, *, subject: str = "calendar") -> None:
        self.timezone = timezone
        super().__init__(f"{subject}: timezone {timezone!r} is not an IANA zone name")


class InvalidBusinessHours(InvalidInput):
    """Business hours that cannot hold a send (open not before close, unknown weekday...)."""


class InvalidStaggering(InvalidInput):
    """Staggering limits that cannot be satisfied (negative spacing, a cap below one...)."""


class InvalidLead(InvalidInput):
    """A lead's field is invalid; the message names the lead and the field."""

    def __init__(self, lead: str, field: str, reason: str) -> None:
        self.lead = lead
        self.field = field
        self.reason = reason
        super().__init__(f"lead {lead!r}: {field}: {reason}")


class MissingLocation(InvalidLead):
    """Neither the lead nor the campaign supplies a country or a timezone."""


class InvalidShape(InvalidInput):
    """A send shape fails validation; ``step`` is the step number at fault, if any, and
    ``variant`` the key of the step's A/B variant at fault, if any."""

    def __init__(
        self, shape: str, reason: str, *, step: int | None = None, variant: str | None = None
    ) -> None:
        self.shape = shape
        self.step = step
        self.variant = variant
        self.reason = reason
        where = f" step {step}" if step is not None else ""
        if variant is not None:
            where += f" variant {variant!r}"
        super().__init__(f"send shape {shape!r}{where}: {reason}")


class InvalidDraft(InvalidInput):
    """A draft breaks its channel's rules (subject with a line break, note too long...)."""

    def __init__(self, subject: str, field: str, reason: str) -> None:
        self.subject = subject
        self.field = field
        self.reason = reason
        super().__init__(f"{subject}: {field}: {reason}")


class InvalidSettings(InvalidInput):
    """Campaign or workspace settings that cannot work."""


class InvalidIdentity(InvalidSettings):
    """A sender identity's field is invalid (a mailbox address, a display name with a line
    break...); the message names the identity and the field."""

    def __init__(self, identity: str, field: str, reason: str) -> None:
        self.identity = identity
        self.field = field
        self.reason = reason
        super().__init__(f"sender identity {identity!r}: {field}: {reason}")


class InvalidWarmUp(InvalidSettings):
    """A warm-up ramp's field is invalid (a start below one, a ceiling below the start...);
    the message names the ramp and the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"warm-up ramp: {field}: {reason}")


class InvalidBreakerSettings(InvalidSettings):
    """A bounce breaker setting out of range; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"bounce breaker: {field}: {reason}")


class InvalidEvent(InvalidInput):
    """An inbound event that cannot apply (wrong channel, bad dates...)."""


class InvalidUnsubscribeToken(InvalidInput):
    """An unsubscribe token that is malformed, altered, or signed with another secret."""


class NotFound(StarlightError, LookupError):
    """Something asked for does not exist (in this workspace)."""


class UnknownShape(NotFound):
    """``shapes.get`` of a key that is not a stock shape."""

    def __init__(self, key: str, known: Iterable[str]) -> None:
        self.key = key
        self.known = tuple(sorted(known))
        super().__init__(f"no send shape {key!r}; known shapes: {', '.join(self.known)}")


class CampaignNotFound(NotFound):
    """No campaign with that id in this workspace."""


class EnrolmentNotFound(NotFound):
    """No enrolment of that lead in that campaign."""


class DraftNotFound(NotFound):
    """No draft for that lead and step."""


class UnknownContact(NotFound):
    """An inbound event names a contact that no campaign of the workspace wrote to."""


class SenderNotHeld(NotFound):
    """A sender the bounce breaker does not hold in this workspace (nothing to resume)."""

    def __init__(self, workspace: str, sender: str) -> None:
        self.workspace = workspace
        self.sender = sender
        super().__init__(f"workspace {workspace!r}: sender {sender!r} is not held")


class UnknownSender(NotFound):
    """A sender id that is not in the campaign's pools (or was already removed)."""

    def __init__(self, campaign: str, sender: str) -> None:
        self.campaign = campaign
        self.sender = sender
        super().__init__(f"campaign {campaign!r}: sender {sender!r} is not in its pools")


class InsufficientCredits(StarlightError):
    """A debit or reservation would take a workspace's balance below zero.

    Nothing was drafted, reserved or scheduled when this is raised.
    """

    def __init__(self, workspace: str, needed: int, available: int, *, purpose: str = "") -> None:
        self.workspace = workspace
        self.needed = needed
        self.available = available
        why = f" for {purpose}" if purpose else ""
        super().__init__(
            f"workspace {workspace!r}: {needed} credits needed{why}, {available} available"
        )


class IllegalTransition(StarlightError, RuntimeError):
    """A state change that the current state does not allow."""


class DraftsNeedAttention(IllegalTransition):
    """Approval refused: some drafts are invalid or failed and their leads are not excluded."""

    def __init__(self, campaign: str, problems: Iterable[str]) -> None:
        self.campaign = campaign
        self.problems = tuple(problems)
        listed = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(
            f"campaign {campaign!r} cannot be approved: {len(self.problems)} draft(s) need "
            f"attention: {listed}{more}"
        )


class LastSender(IllegalTransition):
    """Removing a sender would leave leads that still need its channel with no sender."""

    def __init__(self, campaign: str, sender: str, leads: int) -> None:
        self.campaign = campaign
        self.sender = sender
        self.leads = leads
        super().__init__(
            f"campaign {campaign!r}: sender {sender!r} is the last active sender of its"
            f" channel and {leads} lead(s) still need it"
        )


class LeaseLost(StarlightError, RuntimeError):
    """A worker tried to record a send whose lease it no longer holds."""


class AdapterError(StarlightError, RuntimeError):
    """An adapter cannot work: bad configuration, rejected credentials, unreachable service."""


class StorageError(AdapterError):
    """The storage backend failed; the operation was rolled back."""


class MailboxUnavailable(AdapterError):
    """The mail server cannot be reached or dropped the connection, also after one reconnect.

    Transient: nothing was lost (what was done is recorded), so polling again later is safe.
    Rejected credentials, a certificate that does not verify or a missing folder are plain
    :class:`AdapterError`: they need a change of configuration, not a wait.
    """


class ConcurrentUpdate(StarlightError, RuntimeError):
    """A stored record changed between reading and writing it; nothing was written.

    The operation can be retried from a fresh read.
    """
