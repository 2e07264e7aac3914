"""The worked estimates of docs/credits.md, computed: the page and the code must agree."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from starlight_sequences import shapes
from starlight_sequences.credits import CreditEstimate, PriceTable, estimate_credits
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead

DOC = (Path(__file__).parents[2] / "docs" / "credits.md").read_text(encoding="utf-8")


def make_leads(groups: list[tuple[int, bool, bool, bool]]) -> list[Lead]:
    leads: list[Lead] = []
    for count, email, linkedin, connected in groups:
        for _ in range(count):
            i = len(leads)
            leads.append(
                Lead(
                    id=LeadId(f"lead-{i:03}"),
                    email=f"person{i}@example.com" if email else None,
                    linkedin_url=f"https://www.linkedin.com/in/person-{i:03}" if linkedin else None,
                    linkedin_connected=connected,
                )
            )
    return leads


UNIFORM = make_leads([(100, True, True, False)])
MIXED = make_leads(
    [
        (50, True, True, False),
        (10, True, True, True),
        (20, True, False, False),
        (12, False, True, False),
        (3, False, True, True),
        (5, False, False, False),
    ]
)


def n(value: int) -> str:
    return f"{value:,}"


def figures(estimate: CreditEstimate) -> str:
    return (
        f"| {n(estimate.drafts)} | {n(estimate.drafting_cost)} | {n(estimate.sends)} "
        f"| {n(estimate.max_send_cost)} | **{n(estimate.total)}** |"
    )


@pytest.mark.parametrize(
    ("key", "total"),
    [
        ("cold-email", 600),
        ("email-sequence", 1800),
        ("email-linkedin", 1400),
        ("linkedin-note", 600),
    ],
)
def test_the_uniform_worked_estimate_matches_the_docs(key: str, total: int) -> None:
    estimate = estimate_credits(shapes.get(key), UNIFORM)
    assert estimate.total == total
    assert not estimate.excluded
    assert f"| `{key}` {figures(estimate)}" in DOC


@pytest.mark.parametrize(
    ("key", "total", "estimated"),
    [
        ("cold-email", 480, 80),
        ("email-sequence", 1440, 80),
        ("email-linkedin", 1054, 95),
        ("linkedin-note", 372, 62),
    ],
)
def test_the_mixed_worked_estimate_matches_the_docs(key: str, total: int, estimated: int) -> None:
    estimate = estimate_credits(shapes.get(key), MIXED)
    assert (estimate.total, len(estimate.leads)) == (total, estimated)
    row = next(line for line in DOC.splitlines() if line.startswith(f"| `{key}` | {estimated} |"))
    assert row.endswith(figures(estimate))
    reasons = Counter(exclusion.reason.name for exclusion in estimate.excluded)
    for reason, count in reasons.items():
        assert f"`{reason}` × {count}" in row


def test_the_overridden_prices_example_matches_the_docs() -> None:
    estimate = estimate_credits(
        shapes.get("email-linkedin"), MIXED, PriceTable(draft=3, linkedin_connect=0)
    )
    assert (estimate.drafting_cost, estimate.max_send_cost, estimate.total) == (465, 310, 775)
    assert "155 × 3 = 465 for drafting plus 310 at most for sends" in DOC
    assert "**775**" in DOC
