"""The harness: interpreters and environments (``env``), the micro bench (``micro``), the HTTP
bench (``http``), the run engine both share (``engine``), run directories (``results``) and the
reports (``report``). The two benches do not import each other."""
