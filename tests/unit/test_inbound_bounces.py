"""Bounces: RFC 3464 delivery status notifications and plain-text bounces, hard and soft."""

from __future__ import annotations

import base64

import pytest

from starlight_sequences.inbound import InboundKind, classify_message
from tests.unit._inbound_messages import SENT_ID, delivery_report, message

FAILED_5 = """
Final-Recipient: rfc822; ada@analytical.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <ada@analytical.example>: User unknown
"""


def test_a_failed_recipient_with_a_5xx_status_is_a_hard_bounce() -> None:
    result = classify_message(delivery_report(FAILED_5))

    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.failed_recipients == ("ada@analytical.example",)
    assert result.status_code == "5.1.1"
    assert result.diagnostic == "550 5.1.1 <ada@analytical.example>: User unknown"
    assert result.original_message_ids == (SENT_ID,)


@pytest.mark.parametrize(("action", "status"), [("failed", "4.4.7"), ("delayed", "4.4.1")])
def test_a_4xx_status_is_a_soft_bounce(action: str, status: str) -> None:
    block = f"Final-Recipient: rfc822; ada@analytical.example\nAction: {action}\nStatus: {status}"
    result = classify_message(delivery_report(block))
    assert result.kind is InboundKind.BOUNCE_SOFT
    assert result.status_code == status


def test_without_a_status_the_diagnostic_code_decides() -> None:
    soft = "Final-Recipient: rfc822; ada@a.example\nAction: failed\nDiagnostic-Code: smtp; 452 full"
    hard = "Final-Recipient: rfc822; ada@a.example\nAction: failed\nDiagnostic-Code: smtp; 550 no"
    enhanced = "Final-Recipient: rfc822; a@a.example\nDiagnostic-Code: smtp; 550-5.7.1 blocked"
    assert classify_message(delivery_report(soft)).kind is InboundKind.BOUNCE_SOFT
    assert classify_message(delivery_report(hard)).kind is InboundKind.BOUNCE_HARD
    result = classify_message(delivery_report(enhanced))
    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.status_code == "5.7.1"


@pytest.mark.parametrize(
    ("action", "kind"), [("failed", InboundKind.BOUNCE_HARD), ("delayed", InboundKind.BOUNCE_SOFT)]
)
def test_without_any_code_the_action_decides(action: str, kind: InboundKind) -> None:
    block = f"Final-Recipient: rfc822; ada@analytical.example\nAction: {action}"
    result = classify_message(delivery_report(block))
    assert result.kind is kind
    assert result.status_code is None


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_a_delivery_success_notification_is_unmatched(action: str) -> None:
    block = f"Final-Recipient: rfc822; ada@analytical.example\nAction: {action}\nStatus: 2.0.0"
    result = classify_message(delivery_report(block))
    assert result.kind is InboundKind.UNMATCHED
    assert f"reports success (Action: {action})" in result.reason


def test_a_report_with_one_hard_failure_among_other_recipients_is_hard_for_that_one() -> None:
    delivered = "Final-Recipient: rfc822; ok@a.example\nAction: delivered\nStatus: 2.0.0"
    delayed = "Final-Recipient: rfc822; slow@a.example\nAction: delayed\nStatus: 4.4.1"
    result = classify_message(delivery_report(delivered, delayed, FAILED_5))
    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.failed_recipients == ("ada@analytical.example",)


def test_the_original_recipient_comes_before_the_final_one() -> None:
    block = (
        "Original-Recipient: rfc822;Sales@Analytical.example\n"
        "Final-Recipient: rfc822; ada@mailhost.analytical.example\nAction: failed\nStatus: 5.2.2"
    )
    result = classify_message(delivery_report(block))
    assert result.failed_recipients == (
        "sales@analytical.example",
        "ada@mailhost.analytical.example",
    )


def test_a_report_whose_status_part_is_unreadable_is_read_from_its_text() -> None:
    result = classify_message(delivery_report("X-Unknown: nothing here"))
    assert result.kind is InboundKind.BOUNCE_HARD  # from the mail system, "Undelivered Mail"
    assert result.failed_recipients == ()
    assert result.original_message_ids == (SENT_ID,)
    assert "a recipient it does not name" in result.reason


def test_a_report_with_nothing_readable_about_delivery_is_unmatched_with_a_reason() -> None:
    raw = (
        delivery_report("X-Unknown: nothing here")
        .replace(b"MAILER-DAEMON@mx.starlight.example (Mail Delivery System)", b"ops@x.example")
        .replace(b"Undelivered Mail Returned to Sender", b"Report")
        .replace(b"The mail system.", b"A report.")
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.UNMATCHED
    assert "no readable recipient" in result.reason


def test_a_base64_encoded_status_part_is_read_too() -> None:
    fields = base64.b64encode(FAILED_5.strip().encode()).decode()
    raw = f"""From: postmaster@mx.example
Subject: Undeliverable: hi
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Type: message/delivery-status
Content-Transfer-Encoding: base64

{fields}
--R--
""".encode()
    result = classify_message(raw)
    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.failed_recipients == ("ada@analytical.example",)


def test_an_internationalised_delivery_status_is_read_like_a_plain_one() -> None:
    raw = delivery_report(FAILED_5).replace(
        b"message/delivery-status", b"message/global-delivery-status"
    )
    assert classify_message(raw).kind is InboundKind.BOUNCE_HARD


def test_the_x_failed_recipients_header_adds_to_the_recipients() -> None:
    raw = delivery_report(FAILED_5).replace(
        b"To: ben@", b"X-Failed-Recipients: Other@Analytical.example\nTo: ben@"
    )
    result = classify_message(raw)
    assert result.failed_recipients == ("ada@analytical.example", "other@analytical.example")


# --- plain-text bounces -----------------------------------------------------------------------

EXIM_TEXT = """This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  ada@analytical.example
    SMTP error from remote mail server after RCPT TO:<ada@analytical.example>:
    550 5.1.1 User unknown

------ This is a copy of the message, including all the headers. ------

From: Ben Baker <ben@starlight.example>
Message-ID: <cmp-7.ada.1@starlight.example>
Subject: Faster batch jobs

Reply 452 4.2.2 or 250 here would not count: this is the returned copy.
"""


def exim(text: str, *, subject: str = "Mail delivery failed: returning message to sender") -> bytes:
    return message(
        text,
        subject=subject,
        sender="Mail Delivery System <Mailer-Daemon@mx.starlight.example>",
        in_reply_to=None,
        headers=(("Auto-Submitted", "auto-replied"),),
    )


def test_an_exim_plain_text_bounce_is_read_from_its_text() -> None:
    result = classify_message(exim(EXIM_TEXT))

    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.failed_recipients == ("ada@analytical.example",)
    assert result.status_code == "5.1.1"
    assert result.diagnostic == "550 5.1.1 User unknown"
    assert result.original_message_ids == (SENT_ID,)
    assert "This is a copy" not in result.text


def test_a_plain_text_bounce_that_says_delivery_is_delayed_is_soft() -> None:
    text = (
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue.\n\n  ada@analytical.example\n"
    )
    result = classify_message(exim(text, subject="Warning: message 1tQ delayed 24 hours"))
    assert result.kind is InboundKind.BOUNCE_SOFT
    assert result.status_code is None
    assert "is delayed" in result.reason


def test_a_plain_text_bounce_with_only_a_basic_reply_code_uses_its_class() -> None:
    text = "Delivery to the following recipient failed permanently:\n\n  ada@a.example\n\n552 full"
    result = classify_message(exim(text, subject="Delivery Status Notification (Failure)"))
    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.status_code is None
    assert result.diagnostic == "552 full"


def test_x_failed_recipients_alone_makes_a_bounce() -> None:
    raw = message(
        "Something went wrong.",
        in_reply_to=None,
        headers=(("X-Failed-Recipients", "ada@analytical.example"),),
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.failed_recipients == ("ada@analytical.example",)


def test_a_person_writing_about_an_undeliverable_email_is_not_a_bounce() -> None:
    raw = message("Your last email could not be delivered to my colleague, resend?")
    assert classify_message(raw).kind is InboundKind.REPLY


def test_a_quoted_printable_status_part_is_read_too() -> None:
    raw = delivery_report(FAILED_5.replace("User unknown", "Benutzer unbekannt =C3=BC")).replace(
        b"Content-Type: message/delivery-status\n",
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: quoted-printable\n",
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.BOUNCE_HARD
    assert result.failed_recipients == ("ada@analytical.example",)
    assert result.diagnostic.endswith("Benutzer unbekannt ü")
