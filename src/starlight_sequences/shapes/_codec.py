"""Send shapes to and from plain, JSON-able dicts, with a schema version.

Version 1 of the format::

    {
      "schema_version": 1,
      "key": "email-linkedin",
      "name": "Email + LinkedIn",
      "description": "...",
      "for_connected_leads": false,
      "steps": [
        {"number": 1, "action": "email", "wait_days": 0,
         "counts_from": "previous_step", "guidance": "...", "with_note": false},
        ...
      ]
    }

``to_dict`` writes every field. ``from_dict`` requires ``schema_version``, ``key``, ``name``,
``steps`` and, per step, ``number`` and ``action``; the other fields take the defaults of
``SendShape`` and ``Step``. Unknown fields are errors rather than silently dropped: a typo such as
``"wait": 3`` would otherwise lose the wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from starlight_sequences.channels import Action
from starlight_sequences.errors import InvalidShape
from starlight_sequences.shapes._model import SendShape, Step, WaitAnchor

__all__ = ["SCHEMA_VERSION", "shape_from_dict", "shape_to_dict"]

SCHEMA_VERSION = 1
"""The version of the dict format ``SendShape.to_dict`` writes and ``from_dict`` reads."""

_T = TypeVar("_T")

_SHAPE_FIELDS = frozenset(
    {"schema_version", "key", "name", "description", "for_connected_leads", "steps"}
)
_STEP_FIELDS = frozenset({"number", "action", "wait_days", "counts_from", "guidance", "with_note"})


def shape_to_dict(shape: SendShape) -> dict[str, Any]:
    """The shape as a plain dict of str, int, bool and lists (see the module docstring)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "key": shape.key,
        "name": shape.name,
        "description": shape.description,
        "for_connected_leads": shape.for_connected_leads,
        "steps": [
            {
                "number": step.number,
                "action": step.action.value,
                "wait_days": step.wait_days,
                "counts_from": step.counts_from.value,
                "guidance": step.guidance,
                "with_note": step.with_note,
            }
            for step in shape.steps
        ],
    }


def shape_from_dict(data: Mapping[str, Any]) -> SendShape:
    """Read a shape written by :func:`shape_to_dict` (this or an older schema version).

    Raises:
        InvalidShape: see ``SendShape.from_dict``.
    """
    if not isinstance(data, Mapping):
        raise InvalidShape("?", f"a shape must be a mapping, not {type(data).__name__}")
    raw_key = data.get("key")
    key = raw_key if isinstance(raw_key, str) and raw_key else "?"
    _check_version(key, data)
    unknown = sorted(str(name) for name in set(data) - _SHAPE_FIELDS)
    if unknown:
        raise InvalidShape(key, f"unknown field(s): {', '.join(unknown)}")
    if not isinstance(raw_key, str) or not raw_key:
        raise InvalidShape(key, "field 'key' is required and must be a non-empty string")
    name = _required(key, data, "name", str)
    description = _optional(key, data, "description", str, "")
    for_connected = _optional(key, data, "for_connected_leads", bool, False)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, Sequence) or isinstance(raw_steps, str | bytes):
        raise InvalidShape(key, "field 'steps' is required and must be a list")
    steps = tuple(
        _step_from_dict(key, position, raw) for position, raw in enumerate(raw_steps, start=1)
    )
    return SendShape(
        key=raw_key,
        name=name,
        description=description,
        steps=steps,
        for_connected_leads=for_connected,
    )


def _check_version(key: str, data: Mapping[str, Any]) -> None:
    version = data.get("schema_version")
    if version is None:
        raise InvalidShape(
            key, f"field 'schema_version' is missing (this library writes {SCHEMA_VERSION})"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidShape(key, f"schema_version must be a positive integer, not {version!r}")
    if version > SCHEMA_VERSION:
        raise InvalidShape(
            key,
            f"schema_version {version} is newer than this version of starlight_sequences "
            f"reads (up to {SCHEMA_VERSION}); upgrade the library to load this shape",
        )


def _step_from_dict(key: str, position: int, raw: object) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidShape(key, f"steps[{position - 1}] must be a mapping")
    number = raw.get("number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidShape(
            key, f"steps[{position - 1}]: 'number' is required and must be an integer"
        )
    unknown = sorted(str(name) for name in set(raw) - _STEP_FIELDS)
    if unknown:
        raise InvalidShape(key, f"unknown field(s): {', '.join(unknown)}", step=number)
    action_name = raw.get("action")
    try:
        if not isinstance(action_name, str):
            raise ValueError(action_name)
        action = Action(action_name)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise InvalidShape(
            key, f"unknown action {action_name!r} (known: {known})", step=number
        ) from None
    anchor_name = raw.get("counts_from", WaitAnchor.PREVIOUS_STEP.value)
    try:
        anchor = WaitAnchor(anchor_name)
    except ValueError:
        known = ", ".join(a.value for a in WaitAnchor)
        raise InvalidShape(
            key, f"unknown counts_from {anchor_name!r} (known: {known})", step=number
        ) from None
    wait_days = raw.get("wait_days", 0)
    if not isinstance(wait_days, int) or isinstance(wait_days, bool):
        raise InvalidShape(
            key, f"wait_days must be a whole number of days, not {wait_days!r}", step=number
        )
    guidance = raw.get("guidance", "")
    if not isinstance(guidance, str):
        raise InvalidShape(key, "guidance must be a string", step=number)
    with_note = raw.get("with_note", False)
    if not isinstance(with_note, bool):
        raise InvalidShape(key, "with_note must be true or false", step=number)
    return Step(
        number=number,
        action=action,
        wait_days=wait_days,
        counts_from=anchor,
        guidance=guidance,
        with_note=with_note,
    )


def _required(key: str, data: Mapping[str, Any], field: str, kind: type[_T]) -> _T:
    value = data.get(field)
    if not isinstance(value, kind):
        raise InvalidShape(key, f"field {field!r} is required and must be a {kind.__name__}")
    return value


def _optional(key: str, data: Mapping[str, Any], field: str, kind: type[_T], default: _T) -> _T:
    value = data.get(field, default)
    if not isinstance(value, kind):
        raise InvalidShape(key, f"field {field!r} must be a {kind.__name__}")
    return value
