"""``python -m ftscale.server`` (the same as ``ftscale serve``): see :mod:`ftscale.server.cli`."""

from __future__ import annotations

import sys

from ftscale.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
