"""The async service cannot drift from the synchronous one: the same use cases, the same
parameters, the same summaries; and the asyncio worker takes the synchronous worker's settings.

The behaviour under asyncio, on a real SQLite file, is in
``tests/integration/test_async_sqlite.py``.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import starlight_sequences
from starlight_sequences import async_service, async_worker
from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.async_worker import run_worker_async
from starlight_sequences.errors import InvalidSettings
from starlight_sequences.service import CampaignService
from starlight_sequences.worker import run_worker
from tests.service_kit import make_kit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "async.md"
OWN_MEMBERS = {"aclose", "from_ports", "service"}
"""Public members of the async service that are not use cases of the synchronous one."""


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def _use_cases() -> list[str]:
    return sorted(
        name
        for name in _public(CampaignService)
        if inspect.isfunction(inspect.getattr_static(CampaignService, name))
    )


def _summary(function: object) -> str:
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n")[0].split())


def test_the_service_has_use_cases_to_mirror() -> None:
    assert {"create_campaign", "preview", "approve", "dispatch_due", "ingest_email"} <= set(
        _use_cases()
    )


@pytest.mark.parametrize("name", _use_cases())
def test_every_use_case_has_a_coroutine_twin_with_the_same_signature(name: str) -> None:
    sync = getattr(CampaignService, name)
    twin = getattr(AsyncCampaignService, name, None)
    assert twin is not None, f"AsyncCampaignService has no {name}"
    assert inspect.iscoroutinefunction(twin), name
    assert inspect.signature(twin) == inspect.signature(sync), name
    assert _summary(twin) == _summary(sync), name


def test_the_async_service_adds_nothing_but_its_own_lifetime() -> None:
    assert _public(AsyncCampaignService) == set(_use_cases()) | OWN_MEMBERS


def test_from_ports_takes_the_arguments_of_the_service_and_max_threads() -> None:
    service_parameters = list(inspect.signature(CampaignService).parameters.values())
    built = list(inspect.signature(AsyncCampaignService.from_ports).parameters.values())
    assert built[:-1] == service_parameters
    assert built[-1].name == "max_threads"


def test_from_ports_builds_a_service_around_those_ports() -> None:
    kit = make_kit()
    built = AsyncCampaignService.from_ports(
        storage=kit.storage, ledger=kit.ledger, drafter=kit.drafter, clock=kit.clock
    )
    assert built.service.storage is kit.storage
    assert built.service.clock is kit.clock


def test_the_asyncio_worker_takes_the_settings_of_the_worker_but_signals() -> None:
    sync = inspect.signature(run_worker).parameters
    twin = inspect.signature(run_worker_async).parameters
    assert inspect.iscoroutinefunction(run_worker_async)
    assert list(twin) == [name for name in sync if name != "handle_signals"]
    for name, parameter in twin.items():
        if name == "service":
            assert parameter.annotation == "AsyncCampaignService"
        elif name == "stop":
            assert parameter.annotation == "asyncio.Event | None"
        else:
            assert parameter == sync[name], name
    assert inspect.signature(run_worker_async).return_annotation == "WorkerStats"


def test_max_threads_below_one_is_refused() -> None:
    with pytest.raises(InvalidSettings, match="max_threads"):
        AsyncCampaignService(make_kit().service, max_threads=0)


def test_the_async_modules_surfaces_are_sorted_and_pinned() -> None:
    assert async_service.__all__ == ["DEFAULT_MAX_THREADS", "AsyncCampaignService"]
    assert async_worker.__all__ == ["run_worker_async"]
    assert starlight_sequences.AsyncCampaignService is AsyncCampaignService
    assert starlight_sequences.run_worker_async is run_worker_async


def _blocks_on(name: str) -> str:
    """What the docstring of the async ``name`` says the call blocks on."""
    doc = " ".join((inspect.getdoc(getattr(AsyncCampaignService, name)) or "").split())
    found = re.search(r"Blocks on ([^.]*)\.", doc)
    return found.group(1) if found else "no I/O (CPU only: resolves every lead's cadence)"


def test_docs_list_what_every_call_blocks_on_as_its_docstring_says() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|$", DOCS.read_text(), re.MULTILINE))
    assert {name: rows.get(name) for name in _use_cases()} == {
        name: _blocks_on(name) for name in _use_cases()
    }
