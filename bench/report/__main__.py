"""``python -m bench.report``: see :mod:`bench.report.cli`."""

from __future__ import annotations

import sys

from bench.report.cli import main

sys.exit(main())
