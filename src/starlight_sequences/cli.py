"""The ``starlight`` command: campaigns over a SQLite file, from the terminal.

Every subcommand but ``demo`` works on the database given by ``--db PATH`` or the
``STARLIGHT_DB`` environment variable, in the workspace given by ``--workspace`` or
``STARLIGHT_WORKSPACE`` (default "default"). See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import codecs
import io
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from starlight_sequences import __version__
from starlight_sequences.errors import StarlightError
from starlight_sequences.ports.clock import Clock

__all__ = ["main"]

_EPILOG = (
    "Every subcommand but demo needs a database: --db PATH or STARLIGHT_DB. "
    "`starlight SUBCOMMAND --help` shows its options; docs/cli.md has a walk-through."
)


def _typed(convert: Callable[[str], object], what: str) -> Callable[[str], object]:
    """An argparse ``type`` whose ValueError message reaches the user as it is."""

    def parse(value: str) -> object:
        try:
            return convert(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = what
    return parse


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The options every subcommand takes (also accepted before the subcommand)."""
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("where")
    group.add_argument(
        "--db", default=default, metavar="PATH", help="the SQLite file (env STARLIGHT_DB)"
    )
    group.add_argument(
        "--workspace",
        default=default,
        metavar="NAME",
        help='the workspace (env STARLIGHT_WORKSPACE; default "default")',
    )
    group.add_argument(
        "--outbox",
        default=default,
        metavar="DIR",
        help="folder of sent emails as .eml files (default: outbox/ beside the database)",
    )
    group.add_argument(
        "--tasks",
        default=default,
        metavar="FILE",
        help="LinkedIn task file (default: linkedin-tasks.jsonl beside the database)",
    )
    sending = common.add_argument_group("unsubscribe (every email carries one; see docs/cli.md)")
    sending.add_argument(
        "--unsubscribe-url",
        default=default,
        metavar="HTTPS_URL",
        help="your one-click unsubscribe endpoint; each email links to it with a signed token "
        "(env STARLIGHT_UNSUBSCRIBE_URL; the secret only from STARLIGHT_UNSUBSCRIBE_SECRET)",
    )
    sending.add_argument(
        "--unsubscribe-mailto",
        default=default,
        metavar="ADDRESS",
        help="an address that receives unsubscribe requests (env STARLIGHT_UNSUBSCRIBE_MAILTO)",
    )
    sending.add_argument(
        "--no-unsubscribe",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="send email without List-Unsubscribe (not for bulk mail)",
    )
    logs = common.add_argument_group("logging (to stderr)")
    logs.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="-v: what each send did (INFO); -vv: also deferrals (DEBUG)",
    )
    logs.add_argument(
        "--log-level",
        default=default,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="the level of the starlight_sequences loggers (default WARNING)",
    )
    _debug_option(common, suppress)
    return common


def _debug_option(parser: argparse.ArgumentParser, suppress: bool) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="on an error, print the Python traceback before the one-line message",
    )


def _drafter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("drafting")
    group.add_argument(
        "--drafter",
        choices=("template", "openai"),
        default="template",
        help="template: offline and deterministic (default); openai: an OpenAI-compatible "
        "chat-completions server (key from OPENAI_API_KEY)",
    )
    group.add_argument("--base-url", help="the server's API root, e.g. https://api.openai.com/v1")
    group.add_argument("--model", help="the model name the server knows")


def _limit_option(parser: argparse.ArgumentParser, default: int = 20) -> None:
    parser.add_argument(
        "--limit",
        type=int,
        default=default,
        metavar="N",
        help=f"show at most N rows of long lists (default {default}; 0: all)",
    )


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of text (its shape is in docs/cli.md)",
    )


_Add = Callable[[str, str], argparse.ArgumentParser]
"""Adds a subcommand (name, help) that takes the common options."""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``starlight``."""
    parser = argparse.ArgumentParser(
        prog="starlight",
        description="Multi-step outreach campaigns over email and LinkedIn.",
        epilog=_EPILOG,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"starlight {__version__}")
    common = _common(suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    demo = sub.add_parser("demo", help="run a demonstration campaign on the embedded defaults")
    demo.add_argument("--out", type=Path, default=None, help="folder for the demo's files")
    _debug_option(demo, suppress=True)
    _campaign_commands(add)
    _review_commands(add)
    _running_commands(add, common)
    _inbound_commands(add)
    return parser


def _campaign_commands(add: _Add) -> None:
    """import, estimate, create."""
    imp = add("import", "check a CSV of leads and write the good ones to a JSON lead file")
    imp.add_argument("csv", metavar="FILE.csv")
    imp.add_argument("--out", metavar="FILE.json", help="default: FILE.leads.json beside the CSV")

    lead_file_help = "leads: a CSV, or a JSON lead file written by `starlight import`"
    skip_help = "go on with the good leads when some rows are bad (they are listed on stderr)"

    estimate = add("estimate", "the credits a campaign would cost (changes nothing)")
    estimate.add_argument("--shape", required=True, help="a stock shape key, or a shape JSON file")
    estimate.add_argument("--leads", required=True, metavar="FILE", help=lead_file_help)
    estimate.add_argument("--skip-invalid", action="store_true", help=skip_help)
    estimate.add_argument("--per-lead", action="store_true", help="one line per lead")
    _limit_option(estimate)
    _json_option(estimate)

    create = add("create", "create a campaign: enrol the leads and draft every message")
    create.add_argument("--name", required=True)
    create.add_argument("--brief", help="what you offer and what you ask for")
    create.add_argument("--brief-file", metavar="FILE", help="the brief from a file (- : stdin)")
    create.add_argument("--shape", required=True, help="a stock shape key, or a shape JSON file")
    create.add_argument("--leads", required=True, metavar="FILE", help=lead_file_help)
    create.add_argument("--skip-invalid", action="store_true", help=skip_help)
    create.add_argument(
        "--mailbox",
        action="append",
        metavar="ADDRESS",
        help="the From address of email steps (repeat for a pool of mailboxes)",
    )
    create.add_argument("--mailbox-name", metavar="NAME", help="the From name")
    _warm_up_options(create)
    create.add_argument(
        "--linkedin-account",
        action="append",
        metavar="ID",
        help="the LinkedIn account's id (repeat for a pool of accounts)",
    )
    create.add_argument(
        "--senders",
        metavar="FILE",
        help="a JSON file of mailboxes and LinkedIn accounts with their caps (a pool)",
    )
    create.add_argument(
        "--linkedin-premium", action="store_true", help="notes of 300 characters, not 200"
    )
    create.add_argument("--campaign-id", metavar="ID", help="default: a generated one")
    create.add_argument("--default-country", metavar="CC", help="for leads without a country")
    create.add_argument("--default-timezone", metavar="ZONE", help="for leads without one")
    create.add_argument(
        "--seed",
        default="",
        metavar="TEXT",
        help="seeds the A/B split of leads among a step's variants and the send jitter "
        "(default: empty); the same seed gives the same split",
    )
    _drafter_options(create)
    _limit_option(create)


def _warm_up_options(create: argparse.ArgumentParser) -> None:
    from starlight_sequences._cli_inputs import parse_date, parse_warm_up

    group = create.add_argument_group("mailbox caps and warm-up ramp (docs/settings.md)")
    group.add_argument(
        "--mailbox-timezone",
        metavar="ZONE",
        help="where the mailbox's day is counted for its cap (default UTC)",
    )
    group.add_argument(
        "--warm-up",
        type=_typed(parse_warm_up, "warm-up"),
        metavar="START:STEP:CEILING",
        help="ramp the mailbox's daily cap: e.g. 10:2:40 (10, +2 each business day, at most "
        "40; the daily cap is then the ceiling)",
    )
    group.add_argument(
        "--warm-up-since",
        type=_typed(parse_date, "date"),
        metavar="YYYY-MM-DD",
        help="the mailbox-local date the ramp began (default: today)",
    )
    group.add_argument(
        "--mailbox-country",
        metavar="CC",
        help="the country whose business days step the ramp (default: Monday to Friday)",
    )
    group.add_argument(
        "--mailbox-subdivision", metavar="CODE", help="its region, for regional holidays"
    )


def _review_commands(add: _Add) -> None:
    """preview, edit, regenerate, exclude, approve, pause, resume, cancel, resume-sender,
    campaigns."""
    preview = add("preview", "recipients, their steps, planned dates and drafts")
    preview.add_argument("campaign", metavar="CAMPAIGN")
    preview.add_argument("--lead", metavar="ID", help="one recipient, with the full drafts")
    _limit_option(preview)
    _json_option(preview)

    edit = add("edit", "replace a draft's subject and/or body (validated again)")
    edit.add_argument("campaign", metavar="CAMPAIGN")
    edit.add_argument("lead", metavar="LEAD")
    edit.add_argument("step", type=int, metavar="STEP")
    edit.add_argument("--subject")
    edit.add_argument("--body")
    edit.add_argument("--body-file", metavar="FILE", help="the body from a file (- : stdin)")

    regenerate = add("regenerate", "draft one message again (costs a draft)")
    regenerate.add_argument("campaign", metavar="CAMPAIGN")
    regenerate.add_argument("lead", metavar="LEAD")
    regenerate.add_argument("step", type=int, metavar="STEP")
    _drafter_options(regenerate)

    exclude = add("exclude", "leave a recipient out of a campaign (before approval)")
    exclude.add_argument("campaign", metavar="CAMPAIGN")
    exclude.add_argument("lead", metavar="LEAD")
    exclude.add_argument("--reason", default="excluded by the reviewer")

    approve = add("approve", "approve a campaign: reserve the send credits and schedule it")
    approve.add_argument("campaign", metavar="CAMPAIGN")
    approve.add_argument("--lead", metavar="ID", help="mark one recipient as reviewed only")

    for name, what in (
        ("pause", "stop sending (nothing pending is lost)"),
        ("resume", "send again"),
        ("cancel", "stop for good and release the reserved credits"),
    ):
        add(name, what).add_argument("campaign", metavar="CAMPAIGN")

    resume_sender = add("resume-sender", "let a mailbox the bounce breaker held send again")
    resume_sender.add_argument("sender", metavar="SENDER", help="the mailbox's sender id")
    remove = add("remove-sender", "take a mailbox or LinkedIn account out of a campaign's pool")
    remove.add_argument("campaign", metavar="CAMPAIGN")
    remove.add_argument("sender", metavar="SENDER", help="the sender id (a mailbox's address)")
    remove.add_argument(
        "--move-started", action="store_true", help="move the leads it already wrote to, too"
    )

    _json_option(add("campaigns", "list the workspace's campaigns"))


def _running_commands(add: _Add, common: argparse.ArgumentParser) -> None:
    """run, status, timeline, tasks, report, credits."""
    from starlight_sequences._cli_commands import EVENT_KINDS
    from starlight_sequences._cli_inputs import parse_date, parse_instant

    run = add("run", "run the dispatcher: send what is due, until stopped")
    run.add_argument("--once", action="store_true", help="one pass, then exit (cron)")
    run.add_argument("--poll", type=float, default=5.0, metavar="SECONDS", help="default 5")
    run.add_argument("--batch", type=int, default=100, metavar="N", help="sends per pass")
    run.add_argument(
        "--in-flight",
        type=int,
        default=1,
        metavar="N",
        help="most sends handed to senders at once, one per mailbox/account (default 1)",
    )
    run.add_argument("--worker-id", metavar="ID", help="default: host:pid")
    run.add_argument(
        "--this-workspace-only",
        action="store_true",
        help="serve only --workspace (default: every workspace in the file)",
    )
    _smtp_options(run)

    status = add("status", "a campaign's contacts, steps, next sends and counts")
    status.add_argument("campaign", metavar="CAMPAIGN")
    _limit_option(status, default=50)
    _json_option(status)
    status.add_argument(
        "--html",
        metavar="FILE",
        help="also write the monitoring page there: one self-contained HTML file (contacts, "
        "Waiting on connections, stops, and the timelines of the first --limit leads)",
    )

    timeline = add("timeline", "the campaign as a timeline (of the shape, or of one lead)")
    timeline.add_argument("campaign", metavar="CAMPAIGN")
    timeline.add_argument("--lead", metavar="ID")
    timeline.add_argument("--svg", metavar="FILE", help="also write it as SVG")
    _json_option(timeline)

    tasks = add("tasks", "Waiting on connections, and the pending LinkedIn tasks")
    tasks.add_argument("--campaign", metavar="CAMPAIGN")
    _json_option(tasks)
    tasks_sub = tasks.add_subparsers(dest="tasks_command", metavar="done")
    done = tasks_sub.add_parser("done", help="mark a LinkedIn task done", parents=[common])
    done.add_argument("task_id", metavar="TASK_ID")

    report = add("report", "report what a contact did: reply, accepted, bounce, ...")
    report.add_argument("kind", choices=sorted(EVENT_KINDS))
    report.add_argument("lead", metavar="LEAD")
    report.add_argument("--campaign", metavar="CAMPAIGN", help="default: every campaign")
    report.add_argument(
        "--at",
        type=_typed(parse_instant, "instant"),
        metavar="ISO",
        help="when it happened, with its UTC offset (default: now)",
    )
    report.add_argument(
        "--return-date", type=_typed(parse_date, "date"), metavar="YYYY-MM-DD", help="for ooo"
    )
    report.add_argument("--key", help="your id of the event (reporting it twice changes nothing)")
    report.add_argument("--detail", help="free text for the journal (a bounce reason, ...)")

    credits_ = add("credits", "the workspace's credit balance and journal")
    credits_.add_argument("--campaign", metavar="CAMPAIGN", help="that campaign's movements only")
    _json_option(credits_)
    credits_sub = credits_.add_subparsers(dest="credits_command", metavar="top-up")
    top_up = credits_sub.add_parser("top-up", help="add credits", parents=[common])
    top_up.add_argument("amount", type=int, metavar="N")
    top_up.add_argument("--note", default="top-up")


def _smtp_options(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group(
        "email over SMTP (default: .eml files in the outbox folder)",
        "The password comes only from the environment variable STARLIGHT_SMTP_PASSWORD, "
        "never from the command line or the URL.",
    )
    group.add_argument(
        "--smtp",
        metavar="URL",
        help="send email through this server (env STARLIGHT_SMTP_URL): smtp+starttls://HOST[:587], "
        "smtps://HOST[:465] (TLS from the start) or smtp://HOST[:25] (no TLS: a local relay); "
        "a user name may come before the host (smtp+starttls://ada@HOST)",
    )
    group.add_argument(
        "--smtp-user", metavar="NAME", help="the user name to log in with (overrides the URL's)"
    )
    group.add_argument(
        "--smtp-cafile",
        metavar="FILE",
        help="trust the certificates in this PEM file instead of the system's (a private CA)",
    )
    group.add_argument(
        "--smtp-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="for connecting and for each command (default 30)",
    )
    group.add_argument(
        "--smtp-plaintext-auth",
        action="store_true",
        help="with smtp:// and a user, send the password unencrypted anyway (a relay on a "
        "trusted network only)",
    )


# Where stdout cannot encode the demo's symbols (PYTHONIOENCODING=ascii, a latin-1 console),
# they are drawn with ASCII instead.
_ASCII_SYMBOLS = str.maketrans(
    {
        "✉": "@",
        "↩": "<-",
        "✓": "+",
        "—": "-",
        "–": "-",
        "→": "->",
        "…": "...",
        "“": '"',
        "”": '"',
        "×": "x",
    }
)


def _can_encode(stream: object, text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        codecs.lookup(encoding)
        text.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def _tolerate_narrow_streams() -> None:
    """Let stdout and stderr show what their encoding cannot (a name in Greek on an ASCII
    console) as ``\\u`` escapes instead of failing with ``UnicodeEncodeError``."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not _can_encode(stream, "\u2709\u00e9"):
            stream.reconfigure(errors="backslashreplace")


def _inbound_commands(add: _Add) -> None:
    """inbox, ingest: inbound mail."""
    inbox = add("inbox", "read replies, bounces and out-of-office answers from an IMAP folder")
    inbox.add_argument("--imap-host", metavar="HOST", help="the server (env STARLIGHT_IMAP_HOST)")
    inbox.add_argument("--imap-port", type=int, metavar="PORT", help="default: 993, or 143")
    inbox.add_argument(
        "--imap-user",
        metavar="NAME",
        help="the login (env STARLIGHT_IMAP_USER); the password only from STARLIGHT_IMAP_PASSWORD",
    )
    inbox.add_argument(
        "--imap-security",
        choices=("tls", "starttls", "plain"),
        default="tls",
        help="tls (default), starttls, or plain (needs --imap-plaintext-login)",
    )
    inbox.add_argument(
        "--imap-plaintext-login",
        action="store_true",
        help="allow the password over a connection without TLS",
    )
    inbox.add_argument("--folder", default="INBOX", help="the folder to read (default INBOX)")
    inbox.add_argument("--move-to", metavar="FOLDER", help="move each message read there")
    inbox.add_argument(
        "--skip-existing",
        action="store_true",
        help="on the first poll, start after the messages already there",
    )
    inbox.add_argument("--once", action="store_true", help="one poll, then exit (cron)")
    inbox.add_argument("--poll", type=float, default=60.0, metavar="SECONDS", help="default 60")
    ingest = add("ingest", "read raw inbound emails (.eml): replies, bounces, out-of-office")
    ingest.add_argument("files", nargs="+", metavar="FILE.eml", help="- reads one from stdin")


def _run_demo(out: Path | None) -> int:
    from starlight_sequences.demo import run_demo

    def say(text: str) -> None:
        if not _can_encode(sys.stdout, text):
            text = text.translate(_ASCII_SYMBOLS)
        print(text)

    try:
        run_demo(out, say=say)
    except StarlightError as exc:
        print(f"starlight demo: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run the ``starlight`` command; returns the process exit code.

    Exit codes: 0 done; 1 the request failed (a bad lead file, an unknown campaign, too few
    credits, a file that cannot be read... and anything unexpected); 2 the command line is
    wrong; 130 interrupted. Errors are one line on stderr, never a traceback unless ``--debug``
    is given (then the traceback comes first, and the line last).

    Args:
        argv: the arguments (None: ``sys.argv[1:]``).
        clock: the clock the service reads (None: the system clock). Tests and host apps that
            embed the command pass their own.
    """
    _tolerate_narrow_streams()
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Until the command line is parsed, a plain look for the flag decides.
    debug = "--debug" in arguments
    prog = "starlight"
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exc:  # --help, or a usage error argparse already printed
            return exc.code if isinstance(exc.code, int) else 2
        debug = bool(args.debug)
        prog = f"starlight {args.command}"
        _log_to_stderr(args.log_level, args.verbose)
        if args.command == "demo":
            return _run_demo(args.out)
        return _run_command(prog, args, clock, debug=debug)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything unforeseen (RecursionError, MemoryError, a bug...)
        hint = "" if debug else " (run again with --debug to see the traceback)"
        _explain(prog, f"{type(exc).__name__}: {_one_line(exc)}{hint}", debug=debug)
        return 1


def _run_command(prog: str, args: argparse.Namespace, clock: Clock | None, *, debug: bool) -> int:
    """Run a subcommand, turning the errors it is expected to raise into their one line."""
    from starlight_sequences._cli_commands import COMMANDS, CommandError, Session
    from starlight_sequences.adapters.clock import SystemClock

    session = Session(args, clock if clock is not None else SystemClock())
    try:
        return COMMANDS[args.command](session, args)
    except CommandError as exc:
        _explain(prog, str(exc), debug=debug)
        return exc.code
    except StarlightError as exc:
        _explain(prog, str(exc), debug=debug)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _explain(prog, f"{where}{exc.strerror or exc}", debug=debug)
        return 1
    finally:
        session.close()


class _TerminalFormatter(logging.Formatter):
    """Log lines with control characters from users shown escaped (never raw on a terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        from starlight_sequences._cli_output import terminal_text

        return terminal_text(super().format(record))


def _log_to_stderr(level: str | None, verbose: int) -> None:
    """Send the library's log records to stderr at the level asked for (default WARNING)."""
    chosen = level or ("DEBUG" if verbose >= 2 else "INFO" if verbose == 1 else "WARNING")
    logger = logging.getLogger("starlight_sequences")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TerminalFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [h for h in logger.handlers if not isinstance(h, logging.StreamHandler)]
    logger.addHandler(handler)
    logger.setLevel(chosen)
    logger.propagate = False


def _explain(prog: str, message: str, *, debug: bool) -> None:
    """The error line on stderr (after the traceback of the error being handled, if
    ``debug``)."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    print(f"{prog}: error: {message}", file=sys.stderr)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or "(no message)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
