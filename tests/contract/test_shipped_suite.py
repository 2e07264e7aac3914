"""The shipped suites verify a host's adapters: the in-memory adapters pass them, and storages
broken the way a host's could be fail them.

``host_adapters.py`` is a host's test module written as ``docs/testing.md`` says; it runs here
in a pytest of its own (a subprocess, from a folder outside the project, so only the installed
or ``PYTHONPATH`` package is used), and its JUnit report says which tests failed.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import starlight_sequences

HOST_MODULE = Path(__file__).with_name("host_adapters.py")

Outcomes = dict[str, dict[str, str]]
"""Per test class: test name (without parameters) -> "passed", "failed", "error", "skipped"."""


@pytest.fixture(scope="module")
def host_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcomes, str]:
    """The host module's run: each test's outcome, and pytest's output."""
    folder = tmp_path_factory.mktemp("host")
    shutil.copy(HOST_MODULE, folder / "test_host_adapters.py")
    report = folder / "report.xml"
    source = str(Path(starlight_sequences.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": source}
    env.pop("HYPOTHESIS_PROFILE", None)
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder)),
            *("--junitxml", str(report), "test_host_adapters.py"),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    outcomes: Outcomes = collections.defaultdict(dict)
    for case in ET.parse(report).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        name = case.get("name", "").split("[")[0]
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(
            kinds[0] if kinds else "", "passed"
        )
        # a parametrised test counts as failed when any of its cases fails
        if outcomes[cls].get(name, "passed") == "passed":
            outcomes[cls][name] = outcome
    return dict(outcomes), done.stdout + done.stderr


def test_the_in_memory_adapters_pass_every_shipped_suite(host_run: tuple[Outcomes, str]) -> None:
    outcomes, output = host_run
    for cls in ("TestHonestStorage", "TestHonestLedger", "TestHonestAgreement"):
        assert outcomes[cls], f"{cls} did not run:\n{output[-3000:]}"
        problems = {name: o for name, o in outcomes[cls].items() if o != "passed"}
        assert not problems, f"{cls}: {problems}\n{output[-3000:]}"
    assert len(outcomes["TestHonestStorage"]) > 70


def test_a_storage_that_hands_a_send_to_two_workers_fails_the_claim_tests(
    host_run: tuple[Outcomes, str],
) -> None:
    results = host_run[0]["TestDoubleClaimStorage"]
    assert results["test_a_live_lease_is_not_claimed_again"] == "failed"
    assert results["test_concurrent_claimers_never_receive_the_same_send"] == "failed"
    # the rest of the port is the in-memory one, and passes
    assert results["test_committed_records_come_back_equal"] == "passed"


def test_a_storage_whose_finish_send_ignores_the_lease_fails_the_lease_tests(
    host_run: tuple[Outcomes, str],
) -> None:
    results = host_run[0]["TestLeaseIgnoringStorage"]
    for name in (
        "test_finish_send_by_another_worker_is_lease_lost",
        "test_finish_send_after_the_lease_expired_is_lease_lost",
        "test_finish_send_of_a_send_never_claimed_is_lease_lost",
        "test_finish_send_twice_is_lease_lost_the_second_time",
    ):
        assert results[name] == "failed", name
    assert results["test_finish_send_records_the_outcome_with_its_changes"] == "passed"
    assert results["test_concurrent_claimers_never_receive_the_same_send"] == "passed"


def test_a_storage_whose_journal_skips_the_first_activity_after_a_cursor_fails_the_journal_tests(
    host_run: tuple[Outcomes, str],
) -> None:
    results = host_run[0]["TestSkippingJournalStorage"]
    for name in (
        "test_an_empty_journal_hands_out_nothing_and_a_cursor_to_start_from",
        "test_activities_come_in_commit_order_each_with_a_position_that_resumes_after_it",
        "test_paging_with_the_cursor_hands_out_every_activity_exactly_once",
        "test_the_same_cursor_gives_the_same_page_again",
    ):
        assert results[name] == "failed", name
    # from the start of the journal it hands out everything, and the rest of the port passes
    assert results["test_every_field_of_an_activity_comes_back"] == "passed"
    assert results["test_a_workspace_never_sees_another_workspaces_activities"] == "passed"
    assert results["test_committed_records_come_back_equal"] == "passed"


def test_a_storage_whose_journal_ignores_the_workspace_fails_the_isolation_test(
    host_run: tuple[Outcomes, str],
) -> None:
    results = host_run[0]["TestWorkspaceBlindJournalStorage"]
    assert results["test_a_workspace_never_sees_another_workspaces_activities"] == "failed"
    assert results["test_paging_with_the_cursor_hands_out_every_activity_exactly_once"] == (
        "passed"
    )
    assert results["test_the_same_cursor_gives_the_same_page_again"] == "passed"


def test_the_agreement_machine_catches_a_finish_send_that_ignores_the_lease(
    host_run: tuple[Outcomes, str],
) -> None:
    outcomes, output = host_run
    assert outcomes["TestLeaseIgnoringAgreement"] == {"runTest": "failed"}
    assert "LeaseLost" in output


def test_a_subclass_without_its_fixture_errors_naming_the_fixture(
    host_run: tuple[Outcomes, str],
) -> None:
    outcomes, output = host_run
    assert set(outcomes["TestForgottenFixture"].values()) == {"error"}
    assert "TestForgottenFixture needs a `storage` fixture" in output
