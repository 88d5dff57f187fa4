"""``python -m ftscale.bench.report``: the same as ``ftscale report``."""

from __future__ import annotations

import sys

from ftscale.bench.report.cli import main

sys.exit(main())
