"""A gateway-shaped request: await an upstream (simulated I/O), then do CPU work on the answer.

This is the LLM/RAG gateway shape: most wall time is waiting, the rest is tokenising and scoring
in Python. The 5 ms wait is part of the workload's metadata; the compute is what is checked.
"""

from __future__ import annotations

from ftscale.vocab import WorkloadClass
from ftscale.workloads.registry import register

_WORDS = (
    "thread interpreter lock free scaling python service latency request worker queue pool "
    "memory cache token vector score rank answer context prompt model"
).split()
_QUERY = frozenset(["thread", "scaling", "latency", "pool", "token", "rank"])


def _document(i: int) -> str:
    return " ".join(_WORDS[(i * 7 + k * k) % len(_WORDS)] for k in range(40))


@register(
    workload_class=WorkloadClass.MIXED_IO,
    size_meaning="retrieved documents tokenised and ranked",
    default_size=300,
    max_size=95_000,
    large_max_size=1_000_000,
    smoke_size=2,
    io_wait_s=0.005,
)
def rag_gateway(documents: int) -> int:
    """After a 5 ms upstream wait: tokenise retrieved documents, score them, keep the top five."""
    scored = []
    for i in range(documents):
        tokens = _document(i).split()
        counts: dict[str, int] = {}
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        score = sum(c for t, c in counts.items() if t in _QUERY) * 1000 // len(tokens)
        scored.append((score, i))
    top = sorted(scored, reverse=True)[:5]
    return sum(score * 1_000_003 + i for score, i in top)
