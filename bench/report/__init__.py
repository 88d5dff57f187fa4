"""Reports rendered from result files only: ``ftscale report [run-dir ...]``.

A run directory's ``report.md`` (charts linked from ``charts/``) and self-contained
``report.html`` are functions of its ``run.json`` and ``cells/*.json``: re-rendering gives the same
bytes, and nothing is measured or looked up at render time. ``ftscale compare A B ...`` compares runs
(hosts, commits) cell by cell, and a micro run with an HTTP run. Layers, each its own module:
statistics (:mod:`.stats`), the data model (:mod:`.model`, :mod:`.findings`, :mod:`.overhead`,
:mod:`.compare`), presentation (:mod:`.run_report` with its :mod:`.sections`, :mod:`.compare_report`,
:mod:`.charts`, :mod:`.fmt`) and writers (:mod:`.markdown`, :mod:`.html`, :mod:`.output`);
:mod:`.render` ties them together. Importing this package imports nothing else: ``ftscale report
--help`` works without the report's dependencies.
"""
