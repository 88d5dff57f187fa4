"""``python -m ftscale``: the same as the ``ftscale`` command."""

from __future__ import annotations

import sys

from ftscale.cli import main

if __name__ == "__main__":
    sys.exit(main())
