"""Sum the per-test CPU lines that ``FTSCALE_TEST_CPU`` wrote (tests/conftest.py): per test file
and in all, the CPU seconds (own and children's, user and system) beside the wall seconds.

    python tests/cputable.py /tmp/cpu.jsonl*
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(paths: list[str]) -> None:
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for path in paths:
        with open(path) as lines:
            for line in lines:
                record = json.loads(line)
                cpu = record["user"] + record["sys"] + record["child_user"] + record["child_sys"]
                totals = files[record["test"].split("::")[0]]
                totals[0] += cpu
                totals[1] += record["wall"]
                totals[2] += 1
    print(f"{'cpu s':>8} {'wall s':>8} {'tests':>5}  file")
    for name, (cpu, wall, count) in sorted(files.items(), key=lambda kv: -kv[1][0]):
        print(f"{cpu:8.1f} {wall:8.1f} {count:5.0f}  {name}")
    cpu, wall = sum(t[0] for t in files.values()), sum(t[1] for t in files.values())
    print(f"{cpu:8.1f} {wall:8.1f} {sum(t[2] for t in files.values()):5.0f}  in all")


if __name__ == "__main__":
    main(sys.argv[1:])
