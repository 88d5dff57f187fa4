"""The metadata of a run: machine, builds, packages, load generator, git and config.

Also the closing section of a comparison report (:mod:`ftscale.bench.report.compare_report`).
"""

from __future__ import annotations

import json

from ftscale.bench.report import fmt
from ftscale.bench.report.document import Block, Code, Heading, Paragraph, Table
from ftscale.schema import RunMeta


def _json(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def metadata_blocks(meta: RunMeta, level: int = 2) -> list[Block]:
    """Machine, builds, packages, load generator, git and config of one run."""
    host = meta.host
    machine = (
        ("Host", host.hostname),
        ("Platform", host.platform),
        ("Machine", host.machine),
        ("CPU model", host.cpu_model),
        ("Logical cores", str(host.logical_cores)),
        ("Affinity", f"{fmt.cpu_list(host.affinity)} ({len(host.affinity)} CPUs)"),
        ("Memory", fmt.mib(float(host.memory_bytes)) if host.memory_bytes is not None else fmt.DASH),
    )
    blocks: list[Block] = [
        Heading(level, "Metadata"),
        Heading(level + 1, "Machine"),
        Table(("Field", "Value"), machine, "ll"),
        Heading(level + 1, "Builds"),
    ]
    builds = [meta.builds[name] for name in sorted(meta.builds)]
    if builds:
        blocks.append(
            Table(
                (
                    "Build",
                    "Version",
                    "Free-threaded build",
                    "GIL at run time",
                    "GIL re-enabled by",
                    "Configure arguments",
                    "Compiler",
                    "Executable",
                ),
                tuple(
                    (
                        b.build,
                        b.version,
                        fmt.yes_no(b.py_gil_disabled),
                        "on" if b.gil_enabled else "off",
                        b.gil_reenabled_by or fmt.DASH,
                        b.config_args or fmt.DASH,
                        b.compiler or fmt.DASH,
                        b.executable,
                    )
                    for b in builds
                ),
                "llllllll",
            )
        )
        packages = sorted({p for b in builds for p in b.packages})
        if packages:
            blocks += [
                Heading(level + 1, "Packages"),
                Table(
                    ("Package", *(b.build for b in builds)),
                    tuple((p, *(b.packages.get(p, fmt.DASH) for b in builds)) for p in packages),
                ),
            ]
    else:
        blocks.append(Paragraph("No build records in run.json."))
    if meta.generator is not None:
        blocks += [
            Heading(level + 1, "Load generator"),
            Table(("Field", "Value"), tuple((k, _json(v)) for k, v in sorted(meta.generator.items())), "ll"),
        ]
    run_rows = (
        ("Run id", meta.run_id),
        ("Kind", meta.kind),
        ("Schema version", str(meta.schema_version)),
        ("Created", meta.created),
        ("Finished", meta.finished or fmt.DASH),
        ("Git commit", meta.git.commit or fmt.DASH),
        ("Uncommitted changes", fmt.yes_no(meta.git.dirty)),
    )
    blocks += [Heading(level + 1, "Run"), Table(("Field", "Value"), run_rows, "ll")]
    blocks += [
        Heading(level + 1, "Config"),
        Code(json.dumps(meta.config.model_dump(mode="json"), indent=1, sort_keys=True)),
    ]
    return blocks
