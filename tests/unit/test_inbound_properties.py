"""Property tests: whatever bytes arrive, classify_message returns a value and never raises.

Three sources of hostile input: arbitrary bytes; the corpus messages mutated (bytes cut,
inserted, repeated, flipped, truncated); and generated MIME trees with random content types,
charsets, transfer encodings and nesting. The result must also be clean (every text field
encodes as UTF-8) and must not come from the classifier's last-resort "internal error" guard,
which exists so a bug cannot stop a mailbox poller, not to hide bugs from these tests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.inbound import (
    InboundClassification,
    InboundKind,
    classify_message,
    html_to_text,
    reply_text,
    strip_quoted_text,
)

CORPUS = sorted((Path(__file__).resolve().parents[1] / "corpus" / "inbound").glob("*.eml"))
CORPUS_BYTES = [path.read_bytes() for path in CORPUS]


def assert_sound(result: InboundClassification) -> None:
    assert isinstance(result, InboundClassification)
    assert isinstance(result.kind, InboundKind)
    assert result.reason
    assert not result.reason.startswith("internal error"), result.reason
    texts = [
        result.reason,
        result.message_id,
        result.subject,
        result.diagnostic,
        result.text,
        result.from_address or "",
        result.status_code or "",
        *result.in_reply_to,
        *result.references,
        *result.failed_recipients,
        *result.original_message_ids,
    ]
    for text in texts:
        text.encode("utf-8")  # no lone surrogates
    for one_line in (result.subject, result.diagnostic, result.from_address or ""):
        assert "\n" not in one_line
        assert "\r" not in one_line
    assert result.message_id.startswith(("<", "sha256:"))
    if result.sent_at is not None:
        assert result.sent_at.utcoffset() is not None
    if result.kind is not InboundKind.AUTO_REPLY:
        assert result.return_date is None


@given(st.binary(max_size=4_096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_sound(classify_message(raw))


@st.composite
def mutated_corpus_message(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS_BYTES)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        size = len(data)
        at = draw(st.integers(min_value=0, max_value=size))
        operation = draw(st.sampled_from(["cut", "insert", "repeat", "flip", "truncate", "crlf"]))
        if operation == "cut":
            del data[at : at + draw(st.integers(min_value=1, max_value=200))]
        elif operation == "insert":
            data[at:at] = draw(
                st.one_of(
                    st.binary(min_size=1, max_size=64),
                    st.sampled_from(
                        [
                            b"\n\n",
                            b"--",
                            b"=?utf-8?b?",
                            b"=?x-unknown?q?=FF?=",
                            b"Content-Type: multipart/mixed; boundary=x\n",
                            b"Content-Transfer-Encoding: base64\n",
                            b"charset=x-unknown",
                            b"Status: 5.1.1\n",
                            b"Action: failed\n",
                            b"<<>>@@",
                            b"\x00\xff",
                        ]
                    ),
                )
            )
        elif operation == "repeat" and size:
            end = min(size, at + draw(st.integers(min_value=1, max_value=400)))
            data[at:at] = data[at:end]
        elif operation == "flip" and at < size:
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif operation == "truncate":
            del data[at:]
        elif operation == "crlf":
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
    return bytes(data)


@given(mutated_corpus_message(), st.none() | st.dates())
def test_mutated_corpus_messages_never_raise(raw: bytes, received_on: dt.date | None) -> None:
    assert_sound(classify_message(raw, received_on=received_on))


HEADER_NAMES = st.sampled_from(
    [
        "From",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "Precedence",
        "X-Failed-Recipients",
        "Return-Path",
        "List-Id",
        "X-Autoreply",
        "Content-Type",
    ]
)
HEADER_VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "Ada <ada@analytical.example>",
            "<a@b>",
            "<>",
            "auto-replied",
            "bulk",
            "=?utf-8?q?=C3=A9t=C3=A9?=",
            "=?x-unknown?b?!!!?=",
            "Mon, 30 Nov 2026 09:00:00 +0000",
            "Mon, 99 Foo 20260 99:99:99 +9999",
            '"unterminated',
            "((((((((((((comment",
            "a@b, , ,c@d",
        ]
    ),
)
CONTENT_TYPES = st.sampled_from(
    [
        "text/plain",
        "text/html",
        "text/rfc822-headers",
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "application/octet-stream",
        "image/png",
    ]
)
CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "x-unknown", "utf-7", "hex", ""])
ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus"])
BODIES = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n",
            "Action: delayed\nStatus: 4.4.1\n",
            "Please unsubscribe me",
            "Out of office until 12.01.",
            "<p>Yes<blockquote>no</blockquote>",
            "On Mon, Ben <b@c.example> wrote:\n> hi",
            "SGVsbG8=",
            "=E9=",
        ]
    ),
)


def _leaf(content_type: str, charset: str, encoding: str, body: str) -> str:
    charset_param = f"; charset={charset}" if charset else ""
    return (
        f"Content-Type: {content_type}{charset_param}\n"
        f"Content-Transfer-Encoding: {encoding}\n\n{body}\n"
    )


def _tree(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    subtypes = st.sampled_from(
        [
            "multipart/mixed",
            "multipart/alternative",
            "multipart/report; report-type=delivery-status",
            "multipart/report; report-type=disposition-notification",
            "multipart/report",
            "message/rfc822",
        ]
    )

    def build(subtype: str, parts: list[str], boundary: int) -> str:
        if subtype == "message/rfc822":
            return f"Content-Type: message/rfc822\n\nFrom: x@y.example\n{parts[0] if parts else ''}"
        inner = "".join(f"--b{boundary}\n{part}\n" for part in parts)
        return f'Content-Type: {subtype}; boundary="b{boundary}"\n\n{inner}--b{boundary}--\n'

    return st.builds(
        build, subtypes, st.lists(children, max_size=4), st.integers(min_value=0, max_value=9)
    )


MIME_TREES = st.recursive(
    st.builds(_leaf, CONTENT_TYPES, CHARSETS, ENCODINGS, BODIES), _tree, max_leaves=12
)


@given(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=10), MIME_TREES)
def test_generated_mime_trees_never_raise(headers: list[tuple[str, str]], tree: str) -> None:
    head = "".join(f"{name}: {value}\n" for name, value in headers)
    raw = (head + "MIME-Version: 1.0\n" + tree).encode("utf-8", "surrogatepass")
    assert_sound(classify_message(raw))


@given(st.binary(min_size=1, max_size=2_000), st.integers(min_value=1, max_value=2_000))
def test_a_message_over_the_cap_is_never_parsed(raw: bytes, cap: int) -> None:
    result = classify_message(raw, max_bytes=cap)
    if len(raw) > cap:
        assert result.kind is InboundKind.UNMATCHED
        assert "cap" in result.reason
        assert result.from_address is None


@given(st.text(max_size=2_000))
def test_text_helpers_never_raise(text: str) -> None:
    assert isinstance(strip_quoted_text(text), str)
    assert isinstance(html_to_text(text), str)
    assert isinstance(reply_text(text.encode("utf-8", "surrogatepass")), str)


@given(st.text(max_size=400))
def test_stripping_quoted_text_is_idempotent(text: str) -> None:
    once = strip_quoted_text(text)
    assert strip_quoted_text(once) == once
