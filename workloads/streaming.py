"""A streaming LLM gateway: server-sent events, Python CPU work per chunk, an upstream delay between.

An LLM gateway relays a model's tokens as they come: the upstream sends a frame of token ids
every few milliseconds, and for each frame the gateway detokenises it, redacts what must not
leave (e-mail addresses, long digit runs) and drops blocked words, turns the logits of each
token into log-probabilities of its top alternatives, and formats an OpenAI-style
``chat.completion.chunk`` as JSON in one SSE event (``data: {...}\\n\\n``). The last event has
``finish_reason: "stop"``; the stream ends with the HTTP body (no ``[DONE]`` sentinel, so every
event is a chunk of tokens).

``size`` is the number of chunks in the stream. ``POST /stream/stream_tokens`` (the service's
stream route) awaits :data:`DELAY_S` before each chunk and computes the chunk as its mode says;
``compute(size)`` (the micro bench, ``/work/stream_tokens``, the tests) does the CPU work of
every chunk back to back, without the delays, and folds the events' bytes into a checksum.
Every chunk depends only on ``(size, index)``, so chunks can be computed anywhere (a process
pool child too) and the checksum is the same wherever they were.
"""

from __future__ import annotations

import json
import math
import re
import zlib

from ftscale.vocab import WorkloadClass
from ftscale.workloads.registry import StreamSpec, register

DELAY_S = 0.010  # the upstream's time between frames: awaited before each chunk
TOKENS_PER_CHUNK = 16  # token ids in one upstream frame
TOP_LOGPROBS = 5  # alternatives reported per token (OpenAI's top_logprobs)
CANDIDATES = 32  # logits the upstream sends per token position

_STEMS = (
    "the of and to in is that for it as with was on be by at this from or have an they which one you "
    "were her all she there would their we him been has when who will more no if out so said what up "
    "its about into than them can only other new some could time these two may then do first any my "
    "now such like our over man me even most made after also did many before must through back years "
    "thread lock free scale python service latency request worker queue pool memory cache token vector"
).split()
# Byte-level pieces, as a BPE vocabulary has them: words with a leading space, fragments,
# punctuation, digits, and a few pieces that make e-mail addresses and numbers to redact.
VOCAB: tuple[str, ...] = tuple(
    [f" {w}" for w in _STEMS]
    + [w[: max(1, len(w) // 2)] for w in _STEMS]
    + list(".,;:!?()-'\"")
    + [str(d) for d in range(10)]
    + ["@", " contact", " mail", "example", ".com", " café", " naïve", " — ", " Zürich", " 東京"]
)
_BLOCKED = frozenset({"damn", "secret", "password"})
_REDACT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\d{4,}")


def _logits(size: int, index: int, position: int) -> list[tuple[int, float]]:
    """The upstream's candidate (token id, logit) pairs at one position: a deterministic draw."""
    state = (size * 1_000_003 + index * 7_919 + position * 104_729) & 0xFFFFFFFF
    found = []
    for _ in range(CANDIDATES):
        state = (state * 1_664_525 + 1_013_904_223) & 0xFFFFFFFF
        found.append((state % len(VOCAB), (state >> 8) % 10_000 / 1_000.0))
    return found


def _top_logprobs(candidates: list[tuple[int, float]]) -> list[tuple[str, float]]:
    """Log-softmax over the candidates; the most likely :data:`TOP_LOGPROBS`, most likely first."""
    peak = max(logit for _, logit in candidates)
    norm = peak + math.log(sum(math.exp(logit - peak) for _, logit in candidates))
    ranked = sorted(candidates, key=lambda c: (-c[1], c[0]))[:TOP_LOGPROBS]
    return [(VOCAB[token], round(logit - norm, 6)) for token, logit in ranked]


def _filtered(text: str) -> str:
    """Redact e-mail addresses and digit runs, mask blocked words."""
    text = _REDACT.sub("[redacted]", text)
    words = text.split(" ")
    if any(w.lower().strip(".,;:!?") in _BLOCKED for w in words):
        words = ["***" if w.lower().strip(".,;:!?") in _BLOCKED else w for w in words]
    return " ".join(words)


def chunk(size: int, index: int) -> bytes:
    """Chunk ``index`` (0-based) of a stream of ``size`` chunks: one SSE event, as bytes."""
    tokens = []
    for position in range(TOKENS_PER_CHUNK):
        top = _top_logprobs(_logits(size, index, position))
        tokens.append((top[0][0], top))  # greedy decoding: the most likely token is emitted
    text = "".join(piece.encode().decode() for piece, _ in tokens)  # detokenise (bytes to text)
    content = [
        {
            "token": piece,
            "logprob": top[0][1],
            "bytes": list(piece.encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
        }
        for piece, top in tokens
    ]
    last = index == size - 1
    event = {
        "id": f"chatcmpl-{size:08x}",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "ftscale-gateway",
        "choices": [
            {
                "index": 0,
                "delta": {"content": _filtered(text)},
                "logprobs": {"content": content},
                "finish_reason": "stop" if last else None,
            }
        ],
    }
    return b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


@register(
    workload_class=WorkloadClass.STREAMING,
    size_meaning="chunks (SSE events of 16 tokens) in the stream",
    default_size=32,
    max_size=2_000,
    large_max_size=20_000,
    smoke_size=2,
    stream=StreamSpec(chunk=chunk, delay_s=DELAY_S),
)
def stream_tokens(chunks: int) -> int:
    """An LLM gateway's token stream: per chunk, detokenise, redact, log-probabilities, JSON (SSE)."""
    checksum = 0
    for index in range(chunks):
        checksum = zlib.crc32(chunk(chunks, index), checksum)
    return checksum
