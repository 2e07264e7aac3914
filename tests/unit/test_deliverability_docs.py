"""The worked example of docs/deliverability.md, run: the page and the code must agree."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = (Path(__file__).parents[2] / "docs" / "deliverability.md").read_text(encoding="utf-8")


def test_the_bounce_breaker_example_prints_what_the_page_says() -> None:
    code, printed = re.search(
        r"```python\n(from starlight_sequences import BounceBreaker\n.*?)```\n\nprints\n\n"
        r"```text\n(.*?)```",
        DOC,
        re.DOTALL,
    ).groups()  # type: ignore[union-attr]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/deliverability.md", "exec"), {})
    assert out.getvalue() == printed
