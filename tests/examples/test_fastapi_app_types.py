"""The FastAPI example type-checks as a host's code would: ``mypy --strict`` on the folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_fastapi_example_passes_mypy_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(ROOT / "examples" / "fastapi_app"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        # This checkout's library, not whatever copy the interpreter has installed.
        env={"MYPYPATH": str(ROOT / "src"), "PATH": os.defpath, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
