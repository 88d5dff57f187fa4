"""Request mixes: what ``ftscale app`` sends to a user's app, and how an answer is judged.

A mix file (JSON, or TOML by its suffix) holds ``requests``, each a
:class:`~ftscale.schema.MixRequest`: method, path, headers, a JSON body (``json``) or a body
file (``body_file``, relative to the mix file and inside its folder unless the user allows files
outside it: a mix file from elsewhere must not read and copy arbitrary files into a run), a
``weight`` and what a good answer looks like (``expect``: a status, and optionally a JSON field
and its value). ``--request 'POST /score
@body.json'`` is a one-request mix. :func:`resolve` turns a mix into a
:class:`~ftscale.schema.LoadMix`: bytes ready to send, validated once, before anything runs.

Both generators send a mix by weight: the built-in one draws each request from a seeded
generator (per process), wrk cycles through them in each thread by smooth weighted round robin
(``wrk_report.lua``), each request its exact share. Judging answers: a status other than the
expected one counts as an error in both. The JSON field is checked by the built-in generator on
every answer, and by :func:`preflight` on every fresh server before it is measured (one request
of each kind, with wrk as with the built-in generator): wrk's Lua hook cannot tell which request
an answer belongs to, so it judges statuses only.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ftscale.errors import UsageError
from ftscale.schema import Expect, LoadMix, LoadRequest, MixRequest, RequestMix
from ftscale.vocab import APP_PREFIX

METHOD = re.compile(r"[A-Z]+")
JSON_TYPE = "application/json"


def _where(exc: ValidationError) -> str:
    first = exc.errors()[0]
    place = ".".join(str(p) for p in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{place}: {first['msg']}{more}"


def load_mix_file(path: Path) -> RequestMix:
    """Read a mix file (``.toml``: TOML, anything else: JSON); one-line :class:`UsageError` if bad."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"request mix {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise UsageError(f"request mix {path}: not valid {kind} ({exc})") from None
    try:
        return RequestMix.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"request mix {path}: {_where(exc)}") from None


def parse_request(text: str) -> MixRequest:
    """``'POST /score @body.json'``, ``'POST /score {"x": 1}'`` or ``'GET /items/3'``: one request.

    ``@FILE`` sends the file's bytes (as JSON when it ends in ``.json``); anything else after the
    path is a JSON body.
    """
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise UsageError(
            f"--request {text!r}: want 'METHOD PATH [@FILE | JSON]', e.g. 'POST /score @body.json'"
        )
    method, path = parts[0].upper(), parts[1]
    if len(parts) == 2:
        return MixRequest(method=method, path=path)
    body = parts[2].strip()
    if body.startswith("@"):
        return MixRequest(method=method, path=path, body_file=body[1:])
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise UsageError(f"--request {text!r}: the body is neither @FILE nor JSON ({exc})") from None
    return MixRequest(method=method, path=path, json=value)


def _body_path(where: str, name: str, base: Path, confined: bool) -> Path:
    """``name`` relative to ``base``; with ``confined``, it must stay inside ``base`` (links followed)."""
    path = base / name
    if confined and not path.resolve().is_relative_to(base.resolve()):
        raise UsageError(
            f"{where}: body_file {name} is outside the mix file's folder {base} "
            "(--allow-outside-files to send it anyway)"
        )
    return path


def _resolve_one(index: int, request: MixRequest, base: Path, confined: bool) -> LoadRequest:
    label = request.name or f"{request.method} {request.path}"
    where = f"request {index + 1} ({label})"
    if not METHOD.fullmatch(request.method):
        raise UsageError(f"{where}: method {request.method!r} is not an HTTP method (GET, POST ...)")
    if not request.path.startswith("/") or any(c.isspace() for c in request.path):
        raise UsageError(f"{where}: path {request.path!r} must start with / and hold no spaces")
    if request.path == APP_PREFIX or request.path.startswith(APP_PREFIX + "/"):
        raise UsageError(f"{where}: {APP_PREFIX} is reserved for ftscale's own routes")
    if request.json_body is not None and request.body_file is not None:
        raise UsageError(f"{where}: give json or body_file, not both")
    headers = [(k, v) for k, v in request.headers.items()]
    named = {k.lower() for k, _ in headers}
    body = b""
    if request.json_body is not None:
        body = json.dumps(request.json_body, separators=(",", ":")).encode()
        json_type = True
    elif request.body_file is not None:
        path = _body_path(where, request.body_file, base, confined)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{where}: body_file {path}: {exc.strerror or exc}") from None
        json_type = path.suffix == ".json"
        if json_type:
            try:
                json.loads(body)
            except ValueError as exc:
                raise UsageError(f"{where}: body_file {path}: not valid JSON ({exc})") from None
    else:
        json_type = False
    if json_type and "content-type" not in named:
        headers.append(("Content-Type", JSON_TYPE))
    try:
        text, binary = body.decode(), False
    except UnicodeDecodeError:
        text, binary = base64.b64encode(body).decode(), True
    return LoadRequest(
        label=label,
        method=request.method,
        path=request.path,
        headers=headers,
        body=text,
        base64=binary,
        weight=request.weight,
        expect=request.expect,
    )


def resolve(mix: RequestMix, base: Path, seed: int = 0, confined: bool = True) -> LoadMix:
    """Every request of ``mix`` checked and made ready to send (bodies read relative to ``base``, and,
    ``confined``, only from inside it)."""
    requests = [_resolve_one(i, r, base, confined) for i, r in enumerate(mix.requests)]
    return LoadMix(requests=requests, seed=seed)


def describe(mix: LoadMix) -> str:
    """``POST /score 60 %, GET /orders/{id} 40 %``: the mix in one line."""
    total = sum(r.weight for r in mix.requests)
    return ", ".join(f"{r.label} {100 * r.weight / total:.0f} %" for r in mix.requests)


# --- sending and judging ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One request of a mix as a generator sends it."""

    label: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    expect: Expect

    @classmethod
    def of(cls, request: LoadRequest) -> Prepared:
        body = base64.b64decode(request.body) if request.base64 else request.body.encode()
        return cls(request.label, request.method, request.path, tuple(request.headers), body, request.expect)


def read_load_mix(path: Path | str) -> LoadMix:
    return LoadMix.model_validate_json(Path(path).read_bytes())


class Picker:
    """Draws requests by weight from a seeded generator: the same seed, the same sequence."""

    def __init__(self, mix: LoadMix, sequence: int = 0) -> None:
        self.requests = [Prepared.of(r) for r in mix.requests]
        self._weights = [r.weight for r in mix.requests]
        self._random = random.Random(mix.seed * 1_000_003 + sequence)
        self._indices = range(len(self.requests))

    def pick(self) -> Prepared:
        if len(self.requests) == 1:
            return self.requests[0]
        return self.requests[self._random.choices(self._indices, weights=self._weights)[0]]


MISSING = object()


def field_value(document: Any, dotted: str) -> Any:
    """``items.0.score`` in a decoded JSON document (:data:`MISSING` where there is none)."""
    value = document
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def judge(expect: Expect, status: int, body: bytes) -> str | None:
    """None for a good answer; else the key it is counted under (the status, or ``check:FIELD``)."""
    if status != expect.status:
        return str(status)
    if expect.field is None:
        return None
    try:
        value = field_value(json.loads(body), expect.field)
    except ValueError:
        return f"check:{expect.field}"
    if value is MISSING or (expect.value is not None and value != expect.value):
        return f"check:{expect.field}"
    return None


def expected_statuses(mix: LoadMix) -> set[str]:
    """The statuses a mix expects (what wrk's status counts are judged by)."""
    return {str(r.expect.status) for r in mix.requests}


def preflight(host: str, port: int, mix: LoadMix, timeout_s: float = 30.0) -> None:
    """Send each request of ``mix`` once; ValueError naming the first answer that is not good."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        for request in (Prepared.of(r) for r in mix.requests):
            conn.request(
                request.method, request.path, body=request.body or None, headers=dict(request.headers)
            )
            response = conn.getresponse()
            body = response.read()
            problem = judge(request.expect, response.status, body)
            if problem is not None:
                wanted = f"status {request.expect.status}"
                if request.expect.field is not None:
                    value = "" if request.expect.value is None else f" = {json.dumps(request.expect.value)}"
                    wanted += f" with {request.expect.field}{value}"
                text = body[:200].decode(errors="replace")
                raise ValueError(
                    f"{request.label} answered {response.status} ({text!r}); expected {wanted}: "
                    "a fast error is not speed, fix the app or the request mix"
                )
    except (OSError, http.client.HTTPException) as exc:
        raise ValueError(f"checking the request mix: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


# --- wrk --------------------------------------------------------------------------------------------


def _lua_string(data: bytes) -> str:
    out = []
    for byte in data:
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_table(mix: LoadMix) -> str:
    """The mix as a Lua chunk returning its requests, for ``wrk_report.lua`` (``FTSCALE_MIX``)."""
    rows: list[str] = []
    for raw in mix.requests:
        request = Prepared.of(raw)
        headers = ", ".join(
            f"[{_lua_string(k.encode())}] = {_lua_string(v.encode())}" for k, v in request.headers
        )
        method, path = _lua_string(request.method.encode()), _lua_string(request.path.encode())
        rows.append(
            f"  {{method = {method}, path = {path}, headers = {{{headers}}}, "
            f"body = {_lua_string(request.body)}, weight = {float(raw.weight)!r}}},"
        )
    return "return {\n" + "\n".join(rows) + "\n}\n"


def statuses_to_errors(statuses: dict[str, int], expected: Sequence[str] | set[str] | None) -> dict[str, int]:
    """The statuses wrk counted that are errors: not expected by the mix (or not 2xx without one)."""
    if expected is None:
        return {s: n for s, n in statuses.items() if not s.startswith("2")}
    return {s: n for s, n in statuses.items() if s not in expected}
