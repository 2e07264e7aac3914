"""The inbound package is pure core: no I/O, no clock, no adapters, no service.

Read with :mod:`ast`, so every module counts, including code no test happens to run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import starlight_sequences.inbound

PACKAGE = Path(starlight_sequences.inbound.__file__).resolve().parent
FORBIDDEN_MODULES = {
    "os",
    "io",
    "pathlib",
    "socket",
    "ssl",
    "imaplib",
    "smtplib",
    "poplib",
    "urllib",
    "http",
    "subprocess",
    "time",
    "random",
    "secrets",
    "logging",
    "threading",
    "asyncio",
    "starlight_sequences.adapters",
    "starlight_sequences.service",
    "starlight_sequences.ports",
}
FORBIDDEN_CALLS = {"open", "print", "input", "now", "today", "utcnow", "time", "monotonic"}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.name, ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(PACKAGE.glob("*.py"))
    ]


def test_no_inbound_module_imports_anything_that_does_io_or_reads_a_clock() -> None:
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                if any(module == bad or module.startswith(f"{bad}.") for bad in FORBIDDEN_MODULES):
                    found.append(f"{name}: {module}")
    assert not found


def test_no_inbound_module_calls_open_print_or_a_clock() -> None:
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called in FORBIDDEN_CALLS:
                    found.append(f"{name}:{node.lineno}: {called}()")
    assert not found
