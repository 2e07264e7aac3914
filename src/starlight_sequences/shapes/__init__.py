"""Send shapes: steps, the stock shapes, validation and (de)serialisation (pure).

``STOCK`` maps the four stock keys to their shapes; ``get(key)`` looks one up. Host apps build
their own shapes with :class:`SendShape` and :class:`Step` (validated when built) or read them
with ``SendShape.from_dict``. See ``docs/shapes.md``.
"""

from __future__ import annotations

from starlight_sequences.shapes._model import (
    MAX_WAIT_DAYS,
    SCHEMA_VERSION,
    SendShape,
    Step,
    Variant,
    WaitAnchor,
    WinnerRule,
)
from starlight_sequences.shapes._stock import STOCK, get

__all__ = [
    "MAX_WAIT_DAYS",
    "SCHEMA_VERSION",
    "STOCK",
    "SendShape",
    "Step",
    "Variant",
    "WaitAnchor",
    "WinnerRule",
    "get",
]
