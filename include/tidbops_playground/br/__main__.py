"""``python -m tidbops_playground.br``: the br emulator's command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
