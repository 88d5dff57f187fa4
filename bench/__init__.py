"""The harness: interpreters and environments (``env``), the micro bench (``micro``), the HTTP
bench (``http``), your own app through it (``app``), offline bundles (``bundle``), profiles
(``profile``), the run engine both benches share (``engine``), run directories (``results``) and
the reports (``report``). The layers are pyproject.toml's import-linter contracts: the micro bench
imports nothing of the HTTP bench, which runs micro's worker for its in-process pass."""
