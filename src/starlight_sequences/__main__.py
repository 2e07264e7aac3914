"""``python -m starlight_sequences``: the ``starlight`` command."""

from __future__ import annotations

import sys

from starlight_sequences.cli import main

if __name__ == "__main__":
    sys.exit(main())
