"""What the ``starlight`` command reads: lead files, shape files, instants and dates."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from starlight_sequences import shapes
from starlight_sequences.errors import InvalidInput, InvalidShape
from starlight_sequences.leads import Lead, LeadImport, import_leads, import_leads_csv
from starlight_sequences.shapes import SendShape

__all__ = [
    "lead_record",
    "parse_date",
    "parse_instant",
    "read_leads",
    "read_shape",
    "write_lead_file",
]


def read_leads(path: Path) -> LeadImport:
    """Every good lead of a CSV file, or of a JSON lead file (a list of objects), and every
    problem (row-numbered: the CSV header is row 1; a JSON file's first object is row 1).

    Raises:
        OSError: the file cannot be read.
        InvalidInput: a JSON file that is not a list of objects.
    """
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict) and isinstance(data.get("leads"), list):
            data = data["leads"]
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise InvalidInput(f"{path}: a JSON lead file is a list of objects, one per lead")
        return import_leads(data, first_row=1)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return import_leads_csv(handle)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def lead_record(lead: Lead) -> dict[str, Any]:
    """A lead as a JSON object that :meth:`Lead.from_mapping` reads back to an equal lead."""
    record: dict[str, Any] = {"id": lead.id}
    for name in ("first_name", "last_name", "company", "title"):
        value = getattr(lead, name)
        if value:
            record[name] = value
    for name in ("email", "linkedin_url", "country", "subdivision", "timezone"):
        value = getattr(lead, name)
        if value is not None:
            record[name] = value
    if lead.linkedin_connected:
        record["linkedin_connected"] = True
    if lead.fields:
        record["fields"] = dict(lead.fields)
    return record


def write_lead_file(path: Path, leads: tuple[Lead, ...]) -> None:
    """Write ``leads`` as a JSON lead file, atomically (a temporary file renamed into place).

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    text = json.dumps([lead_record(lead) for lead in leads], ensure_ascii=False, indent=1)
    temporary.write_text(text + "\n", encoding="utf-8")
    temporary.replace(path)


def read_shape(value: str) -> SendShape:
    """A stock shape by key, or a shape from a JSON file (a value ending in ``.json``, or an
    existing file).

    Raises:
        UnknownShape: not a stock key, and no such file.
        InvalidShape: the file is not a valid shape.
        OSError: the file cannot be read.
    """
    path = Path(value)
    if value.lower().endswith(".json") or path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidShape(str(path), f"not UTF-8 text ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise InvalidShape(str(path), f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InvalidShape(str(path), "a shape file holds one JSON object")
        return SendShape.from_dict(data)
    return shapes.get(value)


def parse_instant(value: str) -> dt.datetime:
    """An ISO 8601 instant with its UTC offset (``2026-12-01T10:00+01:00``, ``...Z``).

    Raises:
        ValueError: not ISO 8601, or naive (no offset): the message says which.
    """
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; give one, e.g. {value}Z or {value}+01:00")
    return moment


def parse_date(value: str) -> dt.date:
    """An ISO date (``2026-12-07``).

    Raises:
        ValueError: not an ISO date.
    """
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
