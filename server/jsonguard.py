"""Hostile JSON, refused before it is parsed deeply or validated.

Python's ``json`` parses a list nested a thousand deep into a RecursionError (a 2 KB body), and
accepts a string holding a lone surrogate (``"\\ud800"``), which no UTF-8 encoder can write back:
an error body echoing it fails to render. Both were 500s with a traceback. The service's body
parser (:func:`server.app.strict_json_loads`) calls :func:`check_depth` on the raw bytes before
parsing and :func:`check_text` on what was parsed before validation; each raises ``ValueError``
with a short reason, which the parser turns into the ordinary 422 for JSON that is not valid.

Limits: :data:`MAX_DEPTH` bounds nesting for the service's own bodies (``{"size": n}`` is one
level); a user's app (``--app``) parses its own bodies and is not guarded here.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 32

# A JSON string (skipped whole, so brackets inside it do not count) or a bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_OPENING = frozenset(b"[{")


def check_depth(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise ValueError if arrays and objects in ``body`` nest deeper than ``max_depth``."""
    if body.count(b"[") + body.count(b"{") <= max_depth:  # the usual body: nothing to scan
        return
    depth = 0
    for token in _TOKENS.finditer(body):
        first = token.group()[0]
        if first in _OPENING:
            depth += 1
            if depth > max_depth:
                raise ValueError(f"JSON nested deeper than {max_depth} levels")
        elif first != ord('"'):
            depth -= 1


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_text(value: Any) -> None:
    """Raise ValueError if a string in ``value`` (a key or a value, at any depth) holds a lone
    surrogate. ``value`` is what ``json.loads`` made of a body that passed :func:`check_depth`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _lone_surrogate(item):
                raise ValueError("JSON string with a lone surrogate (not valid Unicode)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
