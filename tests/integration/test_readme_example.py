from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- example:start -->\s*```python\n(.*?)```\s*<!-- example:end -->", text, re.S
    )
    assert block is not None, "README.md lost its example block"
    return block.group(1)


def test_the_readme_example_runs_and_prints_what_it_says() -> None:
    code = readme_example()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "36"
    assert lines[1] == "ann ['Mon 30 Nov 09:00', 'Thu 03 Dec 09:00', 'Wed 09 Dec 09:00']"
    assert lines[2] == "dov ['Mon 30 Nov 16:00', 'Thu 03 Dec 16:00', 'Wed 09 Dec 16:00']"
    expected = code.strip().splitlines()[-1].lstrip("# ")
    assert lines[-1] == expected == "[('ann', 1), ('dov', 1), ('dov', 2), ('dov', 3)]"


def test_the_readme_example_is_short() -> None:
    assert 15 <= len(readme_example().strip().splitlines()) <= 30
