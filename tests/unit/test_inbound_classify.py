"""classify_message: the rules, one by one (the corpus tests check whole real-shaped messages)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest

from starlight_sequences.errors import InvalidInput
from starlight_sequences.events import EventKind
from starlight_sequences.inbound import (
    MAX_MESSAGE_BYTES,
    InboundClassification,
    InboundKind,
    classify_message,
    normalise_address,
    normalise_message_id,
)
from tests.unit._inbound_messages import SENT_ID, message

# --- replies ----------------------------------------------------------------------------------


def test_a_human_reply_is_a_reply_with_its_thread_headers_and_sender() -> None:
    result = classify_message(message("Yes, let's talk on Thursday."))

    assert result.kind is InboundKind.REPLY
    assert result.in_reply_to == (SENT_ID,)
    assert result.references == (SENT_ID,)
    assert result.from_address == "ada@analytical.example"
    assert result.message_id == "<reply.1@analytical.example>"
    assert result.subject == "Re: Faster batch jobs"
    assert result.sent_at == dt.datetime(2026, 12, 21, 8, 0, tzinfo=dt.UTC)
    assert result.text == "Yes, let's talk on Thursday."
    assert result.reason == f"a reply from ada@analytical.example to {SENT_ID}"


def test_a_human_message_without_thread_headers_is_still_a_reply_for_matching_by_address() -> None:
    result = classify_message(message("I'm interested.", in_reply_to=None))

    assert result.kind is InboundKind.REPLY
    assert result.in_reply_to == ()
    assert "match it by the sender's address" in result.reason


def test_a_reply_with_no_text_of_its_own_is_still_a_reply() -> None:
    result = classify_message(message("> Worth a call?\n"))

    assert result.kind is InboundKind.REPLY
    assert result.text == ""
    assert result.reason.endswith("(it has no text of its own)")


def test_a_reply_is_not_an_out_of_office_because_it_mentions_a_holiday() -> None:
    # a person wrote it: stopping the sequence is the safe mistake, pausing it is not
    result = classify_message(message("I'm on vacation until 5 January, but yes: let's talk."))
    assert result.kind is InboundKind.REPLY
    assert result.return_date is None


def test_the_kinds_map_to_the_events_the_service_reports() -> None:
    assert InboundKind.REPLY.event_kind is EventKind.REPLY
    assert InboundKind.AUTO_REPLY.event_kind is EventKind.OUT_OF_OFFICE
    assert InboundKind.BOUNCE_HARD.event_kind is EventKind.BOUNCE
    assert InboundKind.UNSUBSCRIBE.event_kind is EventKind.UNSUBSCRIBE
    assert InboundKind.BOUNCE_SOFT.event_kind is None
    assert InboundKind.UNMATCHED.event_kind is None


# --- identifiers ------------------------------------------------------------------------------


def test_message_ids_are_normalised_to_the_form_the_senders_store() -> None:
    result = classify_message(
        message(
            in_reply_to=None,
            message_id=" <Reply.1@Analytical.EXAMPLE> (Outlook)",
            headers=(
                ("In-Reply-To", "<cmp-7.ada.2@STARLIGHT.example>"),
                ("References", f"{SENT_ID}\r\n <cmp-7.ada.2@starlight.example>"),
            ),
        )
    )

    assert result.message_id == "<Reply.1@analytical.example>"
    assert result.in_reply_to == ("<cmp-7.ada.2@starlight.example>",)
    assert result.references == (SENT_ID, "<cmp-7.ada.2@starlight.example>")


def test_the_ids_to_match_come_newest_first_without_repeats() -> None:
    result = InboundClassification(
        kind=InboundKind.BOUNCE_HARD,
        reason="test",
        message_id="<x@y>",
        in_reply_to=("<3@s>",),
        references=("<1@s>", "<2@s>", "<3@s>"),
        original_message_ids=("<3@s>", "<9@s>"),
    )
    assert result.related_message_ids == ("<3@s>", "<2@s>", "<1@s>", "<9@s>")


def test_a_message_without_a_message_id_is_keyed_by_the_hash_of_its_bytes() -> None:
    raw = message(message_id=None)
    result = classify_message(raw)
    assert result.message_id == "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<a.b@Example.COM>", "<a.b@example.com>"),
        ("a.b@example.com", "<a.b@example.com>"),
        ("  <CaseKept@x.example>  ", "<CaseKept@x.example>"),
        ("no id here", None),
        ("", None),
    ],
)
def test_a_message_id_is_normalised_with_or_without_brackets(
    text: str, expected: str | None
) -> None:
    assert normalise_message_id(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ada Lovelace <Ada@Analytical.EXAMPLE>", "ada@analytical.example"),
        ("ada@analytical.example", "ada@analytical.example"),
        ('"Lovelace, Ada" <ada@analytical.example>', "ada@analytical.example"),
        ("José <jose@bücher.example>", "jose@xn--bcher-kva.example"),
        ("MAILER-DAEMON@mx.example (Mail Delivery System)", "mailer-daemon@mx.example"),
        ("Ada Lovelace", None),
        ("undisclosed-recipients:;", None),
    ],
)
def test_an_address_is_normalised_to_lower_case_with_an_ascii_domain(
    text: str, expected: str | None
) -> None:
    assert normalise_address(text) == expected


def test_encoded_subjects_and_senders_are_decoded() -> None:
    result = classify_message(
        message(
            subject="=?utf-8?Q?Re=3A_Schnellere_Batch-Jobs_f=C3=BCr_Sie?=",
            sender="=?iso-8859-1?Q?J=FCrgen_M=FCller?= <juergen@beispiel.example>",
        )
    )
    assert result.subject == "Re: Schnellere Batch-Jobs für Sie"
    assert result.from_address == "juergen@beispiel.example"


def test_a_date_header_without_a_zone_is_read_as_utc_and_a_broken_one_as_none() -> None:
    unknown_zone = classify_message(message(date="Mon, 21 Dec 2026 09:00:00 -0000"))
    broken = classify_message(message(date="the day after tomorrow"))
    assert unknown_zone.sent_at == dt.datetime(2026, 12, 21, 9, 0, tzinfo=dt.UTC)
    assert broken.sent_at is None
    assert broken.kind is InboundKind.REPLY


# --- automatic replies by header --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-replied (vacation)"),
        ("Auto-Submitted", "auto-generated"),
        ("Auto-Submitted", "auto-notified"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Ada Lovelace"),
        ("Precedence", "auto_reply"),
        ("Precedence", "bulk"),
        ("Precedence", "junk"),
    ],
)
def test_an_automatic_answer_is_recognised_by_its_header(name: str, value: str) -> None:
    result = classify_message(message("Thanks for your email.", headers=((name, value),)))
    assert result.kind is InboundKind.AUTO_REPLY, result.reason
    assert name in result.reason


@pytest.mark.parametrize(
    ("name", "value"),
    [("Auto-Submitted", "no"), ("X-Autoreply", "no"), ("Precedence", "first-class")],
)
def test_a_header_that_says_no_is_not_an_automatic_answer(name: str, value: str) -> None:
    result = classify_message(message("Thanks for your email.", headers=((name, value),)))
    assert result.kind is InboundKind.REPLY


def test_machine_mail_that_answers_nothing_is_unmatched_not_an_out_of_office() -> None:
    result = classify_message(
        message(
            "Your invoice is attached.",
            in_reply_to=None,
            headers=(("Auto-Submitted", "auto-generated"),),
        )
    )
    assert result.kind is InboundKind.UNMATCHED
    assert "answers no message" in result.reason


def test_a_newsletter_is_unmatched_even_when_its_text_mentions_an_absence() -> None:
    result = classify_message(
        message(
            "Our out of office playlist for the holidays.",
            in_reply_to=None,
            headers=(("Precedence", "bulk"), ("List-Unsubscribe", "<https://news.example/u>")),
        )
    )
    assert result.kind is InboundKind.UNMATCHED
    assert "mail sent to a list" in result.reason


def test_a_reply_relayed_through_a_mailing_list_is_still_a_reply() -> None:
    result = classify_message(message("Count me in.", headers=(("List-Id", "<team.example>"),)))
    assert result.kind is InboundKind.REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Faster batch jobs",
        "Out of Office: Faster batch jobs",
        "Automatische Antwort: Schnellere Batch-Jobs",
        "Abwesenheitsnotiz: AW: Schnellere Batch-Jobs",
        "Réponse automatique : Des traitements plus rapides",
        "Respuesta automática: Procesos más rápidos",
        "Resposta automática: Processamento mais rápido",
        "Risposta automatica: Elaborazioni più veloci",
        "Automatisch antwoord: Snellere batchjobs",
    ],
)
def test_an_out_of_office_subject_alone_makes_an_automatic_answer(subject: str) -> None:
    result = classify_message(message("Thank you for your message.", subject=subject))
    assert result.kind is InboundKind.AUTO_REPLY, result.reason


def test_the_subject_being_answered_does_not_count_as_an_out_of_office_subject() -> None:
    # our own subject comes back after "Re:"; only what the answering side added counts
    result = classify_message(message("Happy to chat.", subject="Re: Out of office tools"))
    assert result.kind is InboundKind.REPLY


@pytest.mark.parametrize(
    "text",
    [
        "This is an automatic reply. I am out of the office.",
        "Dies ist eine automatische Antwort. Ich bin nicht im Büro.",
        "Ceci est une réponse automatique. Je suis absent du bureau.",
        "Esta es una respuesta automática. Estoy fuera de la oficina.",
        "Esta é uma resposta automática. Estou fora do escritório.",
        "Questa è una risposta automatica. Sono fuori ufficio.",
        "Dit is een automatisch antwoord. Ik ben afwezig.",
    ],
)
def test_a_text_that_says_it_is_automatic_and_absent_is_an_automatic_answer(text: str) -> None:
    result = classify_message(message(text, subject="Re: Faster batch jobs"))
    assert result.kind is InboundKind.AUTO_REPLY, result.reason


# --- unmatched --------------------------------------------------------------------------------


def test_an_empty_message_is_unmatched() -> None:
    for raw in (b"", b"   \r\n\r\n  "):
        result = classify_message(raw)
        assert result.kind is InboundKind.UNMATCHED
        assert result.reason == "the message is empty"


def test_a_message_over_the_size_cap_is_unmatched_without_being_read() -> None:
    raw = message("x" * 2_000)
    result = classify_message(raw, max_bytes=1_000)

    assert result.kind is InboundKind.UNMATCHED
    assert result.reason == (
        f"the message is {len(raw):,} bytes, over the 1,000-byte cap; it was not read"
    )
    assert result.from_address is None  # not parsed at all
    assert result.message_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_the_default_size_cap_is_ten_mebibytes() -> None:
    assert MAX_MESSAGE_BYTES == 10 * 1024 * 1024


def test_a_fifty_megabyte_message_is_unmatched_by_the_cap() -> None:
    raw = message("A" * (50 * 1024 * 1024))
    result = classify_message(raw)
    assert result.kind is InboundKind.UNMATCHED
    assert "over the 10,485,760-byte cap" in result.reason


def test_bytes_without_any_header_are_unmatched() -> None:
    result = classify_message(b"just some text\nwith no header lines\n")
    assert result.kind is InboundKind.UNMATCHED
    assert "no header fields" in result.reason


def test_a_message_without_a_sender_is_unmatched() -> None:
    result = classify_message(message("Interested!", sender=None))
    assert result.kind is InboundKind.UNMATCHED
    assert "no sender address" in result.reason
    assert result.in_reply_to == (SENT_ID,)


def test_a_sender_without_an_address_is_unmatched() -> None:
    result = classify_message(message("Interested!", sender="Ada Lovelace"))
    assert result.kind is InboundKind.UNMATCHED


def test_a_read_receipt_is_unmatched() -> None:
    raw = b"""From: ada@analytical.example
Subject: Read: Faster batch jobs
Content-Type: multipart/report; report-type=disposition-notification; boundary="B"

--B
Content-Type: text/plain

Your message was read.
--B
Content-Type: message/disposition-notification

Final-Recipient: rfc822;ada@analytical.example
Disposition: manual-action/MDN-sent-manually; displayed
--B--
"""
    result = classify_message(raw)
    assert result.kind is InboundKind.UNMATCHED
    assert "read receipt" in result.reason


def test_a_message_nested_deeper_than_the_parser_can_take_is_unmatched() -> None:
    depth = 1_000
    opening = "".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth)
    )
    closing = "".join(f"--b{i}--\n" for i in range(depth, -1, -1))
    raw = (
        "From: ada@analytical.example\nContent-Type: multipart/mixed; boundary=b0\n\n"
        + opening
        + f"--b{depth}\nContent-Type: text/plain\n\nhi\n"
        + closing
    ).encode()

    result = classify_message(raw)

    assert result.kind is InboundKind.UNMATCHED
    assert "multipart or message parts" in result.reason


def test_parts_deeper_than_the_walk_limit_are_not_read() -> None:
    depth = 30
    opening = "".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth)
    )
    closing = "".join(f"--b{i}--\n" for i in range(depth, -1, -1))
    raw = (
        "From: ada@analytical.example\nSubject: Re: x\n"
        "Content-Type: multipart/mixed; boundary=b0\n\n"
        + opening
        + f"--b{depth}\nContent-Type: text/plain\n\nunsubscribe\n"
        + closing
    ).encode()

    result = classify_message(raw)

    assert result.kind is InboundKind.REPLY
    assert result.text == ""


# --- bad input never raises -------------------------------------------------------------------


def test_an_unknown_charset_falls_back_to_utf8_then_windows_1252() -> None:
    utf8 = message("Grüße", content_type="text/plain; charset=x-unknown")
    latin = message("", content_type="text/plain; charset=x-unknown").replace(
        b"\r\n\r\n", b"\r\n\r\nGr\xfc\xdfe \x93quoted\x94"
    )
    assert classify_message(utf8).text == "Grüße"
    assert classify_message(latin).text == "Grüße “quoted”"


def test_a_charset_that_is_not_a_text_encoding_is_ignored() -> None:
    raw = message("plain words", content_type="text/plain; charset=base64")
    assert classify_message(raw).text == "plain words"


def test_invalid_base64_and_quoted_printable_still_give_a_reply() -> None:
    broken_b64 = message("SGVsbG8gQmVu!!!@@@###\nnot base64", transfer_encoding="base64")
    broken_qp = message("caf=E9 =ZZ =\n=", transfer_encoding="quoted-printable")
    for raw in (broken_b64, broken_qp):
        result = classify_message(raw)
        assert result.kind is InboundKind.REPLY
        assert "\ud800" not in result.text


def test_eight_bit_garbage_in_headers_becomes_replacement_characters() -> None:
    raw = message("hello").replace(b"Subject: Re: Faster batch jobs", b"Subject: Re: \xff\xfe\x80")
    result = classify_message(raw)
    assert result.kind is InboundKind.REPLY
    assert result.subject.startswith("Re: ")
    result.subject.encode("utf-8")  # no lone surrogates


def test_an_html_only_reply_is_read_as_text() -> None:
    raw = message(
        "<p>Yes&nbsp;please &amp; thanks</p><script>alert(1)</script>"
        "<blockquote>Worth a call?</blockquote>",
        content_type="text/html; charset=utf-8",
    )
    assert classify_message(raw).text == "Yes please & thanks"


def test_an_attachment_is_not_read_as_the_reply() -> None:
    attachment = base64.b64encode(b"unsubscribe").decode()
    raw = f"""From: ada@analytical.example
Subject: Re: Faster batch jobs
Content-Type: multipart/mixed; boundary="M"

--M
Content-Type: text/plain; charset=utf-8

See the attached notes.
--M
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"
Content-Transfer-Encoding: base64

{attachment}
--M--
""".encode()
    result = classify_message(raw)
    assert result.kind is InboundKind.REPLY
    assert result.text == "See the attached notes."


# --- arguments --------------------------------------------------------------------------------


def test_received_on_must_be_a_date_not_a_datetime() -> None:
    with pytest.raises(InvalidInput, match="received_on must be a date"):
        classify_message(message(), received_on=dt.datetime(2026, 12, 21, tzinfo=dt.UTC))


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_the_size_cap_must_be_a_positive_integer(cap: object) -> None:
    with pytest.raises(InvalidInput, match="max_bytes"):
        classify_message(message(), max_bytes=cap)  # type: ignore[arg-type]


def test_raw_that_is_not_bytes_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="raw must be bytes"):
        classify_message("From: a@b.example\n\nhi")  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    raw = message()
    expected = classify_message(raw)
    assert classify_message(bytearray(raw)) == expected  # type: ignore[arg-type]
    assert classify_message(memoryview(raw)) == expected  # type: ignore[arg-type]


def test_the_text_is_left_out_of_the_repr() -> None:
    result = classify_message(message("a private answer"))
    assert "a private answer" not in repr(result)


def test_a_flood_of_tiny_mime_parts_is_unmatched_before_parsing() -> None:
    parts = "--b\n\nx\n" * 1_001
    raw = (
        f"From: ada@analytical.example\nContent-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n"
    )
    result = classify_message(raw.encode())
    assert result.kind is InboundKind.UNMATCHED
    assert "1,002 MIME boundary lines, more than the 1,000" in result.reason


def test_a_header_section_of_thousands_of_lines_is_unmatched_before_parsing() -> None:
    headers = "".join(f"X-Trace-{i}: hop\n" for i in range(5_001))
    result = classify_message(f"From: ada@analytical.example\n{headers}\nhi\n".encode())
    assert result.kind is InboundKind.UNMATCHED
    assert "more than the 5,000" in result.reason


def test_a_delivery_status_of_thousands_of_blocks_is_unmatched_before_parsing() -> None:
    blocks = "Final-Recipient: rfc822; a@b.example\nAction: failed\n\n" * 1_001
    raw = (
        "From: MAILER-DAEMON@mx.example\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=R\n\n"
        f"--R\nContent-Type: message/delivery-status\n\n{blocks}--R--\n"
    )
    result = classify_message(raw.encode())
    assert result.kind is InboundKind.UNMATCHED
    assert "more than 1,000 blocks" in result.reason
