"""What pyproject.toml promises: every runtime dependency is imported, the version has one
source, and the PostgreSQL adapter says which extra it needs."""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from pathlib import Path

import pytest

import starlight_sequences

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SOURCE = ROOT / "src" / "starlight_sequences"


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None
    return match.group().lower()


def test_every_runtime_dependency_is_imported_by_the_library() -> None:
    code = "\n".join(path.read_text(encoding="utf-8") for path in SOURCE.rglob("*.py"))
    for requirement in PYPROJECT["project"]["dependencies"]:
        module = _name(requirement).replace("-", "_")
        used = re.search(
            rf"^\s*(import|from) {module}\b|import_module\(\"{module}\"\)|files\(\"{module}\.",
            code,
            re.MULTILINE,
        )
        assert used, f"{requirement} is declared but never imported"


def test_no_unused_or_dropped_dependency_is_declared() -> None:
    names = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert names == {"attrs", "holidays", "tzdata", "idna"}


def test_every_declared_lower_bound_is_a_minimum() -> None:
    # The lowest-versions job of .ci/run installs exactly these versions.
    for requirement in PYPROJECT["project"]["dependencies"]:
        assert re.fullmatch(r"[a-z-]+>=[0-9.]+", requirement), requirement


def test_the_version_has_one_source() -> None:
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/starlight_sequences/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", starlight_sequences.__version__)


def test_the_postgres_extra_leaves_the_libpq_choice_to_the_application() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert all("[binary]" not in r for r in extras["postgres"])
    assert any(r.startswith("psycopg[binary]") for r in extras["postgres-binary"])
    assert "test" not in extras
    assert "bench" not in extras
    assert {"test", "bench", "docs"} <= set(PYPROJECT["dependency-groups"])


def test_importing_the_postgres_adapter_without_psycopg_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "starlight_sequences.adapters.postgres", raising=False)
    with pytest.raises(ImportError) as caught:
        importlib.import_module("starlight_sequences.adapters.postgres")
    assert "'postgres' extra" in str(caught.value)
    assert "pip install 'starlight-sequences[postgres]'" in str(caught.value)
    assert "postgres-binary" in str(caught.value)


def test_the_package_ships_its_type_information_and_license() -> None:
    assert (SOURCE / "py.typed").exists()
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]
