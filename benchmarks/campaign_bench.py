"""Benchmark: create (template drafter) and approve one big ``email-linkedin`` campaign.

For each size (1,000, 10,000, 100,000 leads in 30 countries) and each backend (SQLite in a
temporary file, in memory), a fresh Python process generates the leads, tops up the
workspace, creates the campaign with :class:`TemplateDrafter` and approves it; it reports the
seconds of each phase and the process's peak resident memory (``ru_maxrss``), so the peaks of
different sizes never mix. Lead generation is not timed.

Run: ``.venv/bin/python benchmarks/campaign_bench.py`` (``--sizes 1000 10000``,
``--backends sqlite``, ``--profile`` to print where the time goes with cProfile for one size
(``--profile=approve`` or ``=create`` for one phase),
``--json`` for machine-readable lines). Figures are in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# 30 countries, each with one explicit IANA zone (a country's main business zone).
COUNTRIES: tuple[tuple[str, str], ...] = (
    ("US", "America/New_York"),
    ("CA", "America/Toronto"),
    ("MX", "America/Mexico_City"),
    ("BR", "America/Sao_Paulo"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("CL", "America/Santiago"),
    ("CO", "America/Bogota"),
    ("GB", "Europe/London"),
    ("IE", "Europe/Dublin"),
    ("FR", "Europe/Paris"),
    ("DE", "Europe/Berlin"),
    ("NL", "Europe/Amsterdam"),
    ("BE", "Europe/Brussels"),
    ("ES", "Europe/Madrid"),
    ("IT", "Europe/Rome"),
    ("PT", "Europe/Lisbon"),
    ("SE", "Europe/Stockholm"),
    ("PL", "Europe/Warsaw"),
    ("CH", "Europe/Zurich"),
    ("IL", "Asia/Jerusalem"),
    ("AE", "Asia/Dubai"),
    ("SA", "Asia/Riyadh"),
    ("EG", "Africa/Cairo"),
    ("ZA", "Africa/Johannesburg"),
    ("NG", "Africa/Lagos"),
    ("IN", "Asia/Kolkata"),
    ("SG", "Asia/Singapore"),
    ("JP", "Asia/Tokyo"),
    ("CN", "Asia/Shanghai"),
    ("AU", "Australia/Sydney"),
)
assert len(COUNTRIES) == 30

FIRST = ("Ada", "Ben", "Chloé", "Dev", "Eitan", "Fatima", "Grace", "Hiro", "Ines", "Jun")
LAST = ("Okafor", "Silva", "Müller", "Cohen", "Sato", "Nair", "Smith", "Rossi", "Li", "Diaz")
TITLES = ("Head of Data", "VP Engineering", "CTO", "Platform Lead", "Director of Infrastructure")
BRIEF = (
    "Nimbus cuts cloud bills by 30% for data teams without code changes. "
    "We want a 20-minute call with whoever owns infrastructure spend."
)
START = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)


def make_leads(count: int) -> list[Any]:
    """``count`` valid leads: 80 % email and LinkedIn, 10 % email only, 10 % LinkedIn only,
    one in 20 already connected; spread evenly over the 30 countries."""
    from starlight_sequences.ids import LeadId
    from starlight_sequences.leads import Lead

    leads = []
    for n in range(count):
        country, zone = COUNTRIES[n % len(COUNTRIES)]
        first, last = FIRST[n % 10], LAST[(n // 10) % 10]
        kind = n % 10
        email = (
            None if kind == 9 else f"{first.lower().replace('é', 'e')}.{n}@co{n % 997}.example.com"
        )
        linkedin = None if kind == 8 else f"https://www.linkedin.com/in/{last.lower()}-{n:06d}"
        leads.append(
            Lead(
                id=LeadId(f"lead-{n:06d}"),
                first_name=first,
                last_name=last,
                company=f"Company {n % 5000}",
                title=TITLES[n % len(TITLES)],
                email=email,
                linkedin_url=linkedin,
                country=country,
                timezone=zone,
                linkedin_connected=linkedin is not None and n % 20 == 7,
            )
        )
    return leads


def run_one(size: int, backend: str, profile: str | None) -> dict[str, Any]:
    """Create and approve one campaign in this process; returns the figures."""
    from starlight_sequences.adapters.clock import SettableClock
    from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
    from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
    from starlight_sequences.adapters.template_drafter import TemplateDrafter
    from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
    from starlight_sequences.ids import CampaignId, SenderId, WorkspaceId
    from starlight_sequences.service import CampaignService

    leads = make_leads(size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = tempfile.TemporaryDirectory(prefix="starlight-bench-")
    if backend == "sqlite":
        database = Path(folder.name) / "bench.sqlite3"
        storage: Any = SQLiteStorage(database)
        ledger: Any = SQLiteCreditLedger(database)
    else:
        storage, ledger = InMemoryStorage(), InMemoryCreditLedger()
    service = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=TemplateDrafter(),
        clock=SettableClock(START),
        send_without_unsubscribe=True,  # not what is measured
    )
    workspace = WorkspaceId("bench")
    service.top_up(workspace, size * 20)
    profiler = cProfile.Profile() if profile else None
    if profiler is not None and profile in ("both", "create"):
        profiler.enable()
    started, started_cpu = time.perf_counter(), time.process_time()
    report = service.create_campaign(
        workspace,
        name="bench",
        brief=BRIEF,
        shape="email-linkedin",
        leads=leads,
        email_identity=EmailIdentity(id=SenderId("mailbox"), address="ada@nimbus.example.com"),
        linkedin_identity=LinkedInIdentity(id=SenderId("linkedin")),
        campaign_id=CampaignId("bench"),
    )
    created, created_cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.disable()
        if profile in ("both", "approve"):
            profiler.enable()
    campaign = service.approve(workspace, CampaignId("bench"))
    approved, approved_cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sends = len(storage.list_sends(workspace, campaign.id))
    if backend == "sqlite":
        storage.close()
        ledger.close()
    folder.cleanup()
    return {
        "backend": backend,
        "leads": size,
        "enrolled": report.enrolled,
        "drafts": report.drafts,
        "sends": sends,
        "create_s": created - started,
        "approve_s": approved - created,
        "total_s": approved - started,
        # CPU seconds of this process: what the run costs when other processes share the cores.
        "create_cpu_s": created_cpu - started_cpu,
        "approve_cpu_s": approved_cpu - created_cpu,
        "total_cpu_s": approved_cpu - started_cpu,
        # Linux reports ru_maxrss in KiB.
        "peak_rss_mib": rss_after / 1024,
        "rss_before_mib": rss_before / 1024,
    }


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}){memory}, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--backends", nargs="+", choices=("sqlite", "memory"), default=["sqlite", "memory"]
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="both",
        choices=("both", "create", "approve"),
        help="cProfile each run (slower): both phases, or only create or approve",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, backend = int(args.one[0]), args.one[1]
        print(json.dumps(run_one(size, backend, args.profile)))
        return

    print(f"Machine: {_machine()}")
    print(
        f"{'backend':<8} {'leads':>8} {'sends':>8} {'create s':>9} {'approve s':>10} "
        f"{'total s':>8} {'µs/lead':>8} {'CPU s':>6} {'peak RSS':>9}"
    )
    for backend in args.backends:
        for size in args.sizes:
            command = [sys.executable, __file__, "--one", str(size), backend]
            if args.profile:
                command.append(f"--profile={args.profile}")
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                raise SystemExit(f"{backend} {size}: the run failed")
            if args.profile:
                print(done.stderr, file=sys.stderr)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            if args.json:
                print(json.dumps(figures))
                continue
            print(
                f"{backend:<8} {size:>8,} {figures['sends']:>8,} {figures['create_s']:>9.2f} "
                f"{figures['approve_s']:>10.2f} {figures['total_s']:>8.2f} "
                f"{figures['total_s'] / size * 1e6:>8.0f} {figures['total_cpu_s']:>6.2f} "
                f"{figures['peak_rss_mib']:>6.0f} MiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
