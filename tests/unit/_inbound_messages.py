"""Raw messages for the inbound tests, written the way mail clients and servers write them."""

from __future__ import annotations

SENT_ID = "<cmp-7.ada.1@starlight.example>"
DECEMBER_21 = "Mon, 21 Dec 2026 09:00:00 +0100"


def message(
    body: str = "Thanks, let's talk.",
    *,
    subject: str = "Re: Faster batch jobs",
    sender: str | None = "Ada Lovelace <ada@analytical.example>",
    date: str | None = DECEMBER_21,
    in_reply_to: str | None = SENT_ID,
    message_id: str | None = "<reply.1@analytical.example>",
    content_type: str = 'text/plain; charset="utf-8"',
    headers: tuple[tuple[str, str], ...] = (),
    transfer_encoding: str = "8bit",
) -> bytes:
    """One message as raw bytes; ``None`` leaves a header out."""
    lines = []
    if sender is not None:
        lines.append(f"From: {sender}")
    lines.append("To: Ben Baker <ben@starlight.example>")
    lines.append(f"Subject: {subject}")
    if date is not None:
        lines.append(f"Date: {date}")
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to is not None:
        lines.append(f"In-Reply-To: {in_reply_to}")
        lines.append(f"References: {in_reply_to}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
        f"Content-Transfer-Encoding: {transfer_encoding}",
        "",
        body,
    ]
    return "\r\n".join(lines).encode("utf-8")


def out_of_office(text: str, *, date: str | None = DECEMBER_21) -> bytes:
    """An Exchange-style out-of-office answer with ``text`` as its body."""
    return message(
        text,
        subject="Automatic reply: Faster batch jobs",
        date=date,
        headers=(("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")),
    )


def delivery_report(
    *recipient_blocks: str,
    report_type: str = "delivery-status",
    original: str = SENT_ID,
) -> bytes:
    """A ``multipart/report`` with one per-recipient block of fields each."""
    blocks = "\n\n".join(block.strip("\n") for block in recipient_blocks)
    return f"""From: MAILER-DAEMON@mx.starlight.example (Mail Delivery System)
To: ben@starlight.example
Subject: Undelivered Mail Returned to Sender
Date: Mon, 30 Nov 2026 09:00:07 +0000
Message-ID: <dsn.1@mx.starlight.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type={report_type}; boundary="R"

--R
Content-Type: text/plain

The mail system.

--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.starlight.example

{blocks}

--R
Content-Type: text/rfc822-headers

From: Ben Baker <ben@starlight.example>
Message-ID: {original}

--R--
""".encode()
