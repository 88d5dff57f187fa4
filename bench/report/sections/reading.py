"""How to read a report: the statistics, what each column means, and the flags of the run's kind."""

from __future__ import annotations

from ftscale.bench.report import fmt, labels
from ftscale.bench.report.document import Block, Bullets, Heading, Paragraph
from ftscale.bench.report.model import RunModel

M, S = fmt.MINUS, fmt.SIGMA
STATISTICS_NOTES = (
    "Intervals: value [low, high], followed by the interval's real coverage when it is below 95 % "
    "(with 3 repetitions a median's range covers 75 %, a ratio of two medians 90 %); [n/a]: no interval "
    "(a single independent sample). A median's interval is the exact order-statistic interval; a ratio's "
    "is its exact counterpart for two samples with the same spread in percent. Fitted parameters "
    "carry a bootstrap interval marked 'nominal'.",
    "Two stages (HTTP runs): the sweep explores every design at every thread count and chooses each "
    "build's candidate by the highest lower bound of its median's interval (not the highest median, "
    "which rewards luck); confirmation rounds then measure the candidates once per round each, on fresh "
    "servers, in alternating order, and the verdict's ratio is the Hodges-Lehmann estimate of the "
    "per-round ratios with its Wilcoxon interval (exact coverage when the per-round differences are "
    "symmetric; the sign test's interval, exact without that, is beside it). Exploration numbers never "
    "enter the verdict's ratio.",
    "Words: 'wins' only when the ratio's interval excludes 1; 'equivalent' only when it lies within the "
    "margin (5 % unless --margin said otherwise: 1/1.05 to 1.05); otherwise 'inconclusive', with the "
    "rounds the observed spread suggests. 'The load generator was the limit': both sides were flagged "
    "generator-saturated, so neither measured its server. Bounds keep more decimals where "
    "needed, so an interval that excludes 1 never reads 1.00.",
    "Samples: an HTTP repetition runs on its own fresh server process, so repetitions are independent; "
    "a micro cell counts each pyperf worker process as one sample (the median of its values), since "
    "values from one process are not independent.",
    "S(N) = median throughput at N / median at 1 thread of the same series; efficiency = S(N)/N; "
    f"Karp-Flatt e(N) = (1/S {M} 1/N)/(1 {M} 1/N), the serial fraction the measurement implies.",
    f"Fits are least squares on the medians: Amdahl X(N) = λN/(1 + s(N{M}1)); USL X(N) = "
    f"λN/(1 + {S}(N{M}1) + κN(N{M}1)) with peak N* = √((1{M}{S})/κ); 'not identifiable' when the "
    "resampled fits do not converge. R² is undefined (—) when the throughput does not vary.",
)
HTTP_COLUMNS = (
    "n: independent samples (repetitions on fresh servers); CV: their coefficient of variation.",
    "p50/p99 ms: latency percentiles of all requests of the repetitions merged (how many requests in "
    "brackets); closed loop unless the section says open loop.",
    "/health p99: latency of a /health probe sent every 50 ms during the load; /health is answered on "
    "the event loop, so this is the loop's lag as a client sees it.",
    "CPU: server CPU time over wall time, 100 % = one CPU busy (summed over all server processes).",
    "Memory: the distinct physical pages the server's processes hold, each counted once (pages its "
    "worker processes share with their parent count once, as they do in memory); runs made before that "
    "was measured show PSS (shared pages divided between the processes that share them). Peak: the "
    "highest resident set, summed over the server's processes.",
    "Fresh servers: each repetition's server is forked from a pre-imported parent of its build (its "
    "worker processes and pool children forked from it in turn): a new process with its own memory, "
    "without the interpreter start and imports; the start (until /health answered) and stop each "
    "repetition cost are recorded.",
    "Connections: every design and thread count of a workload had the same connections open, so the "
    "thread axis changes the threads only.",
)
STREAM_COLUMNS = (
    "Streaming workloads: throughput is chunks per second (every stream of a cell has the same number "
    "of chunks); p50/p99 are of whole streams; time to first byte and gaps between chunks are in the "
    "Streams section.",
)


MICRO_COLUMNS = (
    "n: pyperf worker processes (each one sample); CV: their coefficient of variation.",
    "Throughput is workload calls per second: strong scaling splits a fixed number of calls between the "
    "threads, weak scaling gives each thread the same number.",
)


def reading_section(model: RunModel) -> list[Block]:
    http = model.meta.kind == "http"
    streamed = any(p.stream is not None for s in model.series for p in s.points)
    return [
        Heading(2, "How to read this report"),
        Bullets(STATISTICS_NOTES),
        Paragraph("Columns:"),
        Bullets((HTTP_COLUMNS + (STREAM_COLUMNS if streamed else ())) if http else MICRO_COLUMNS),
        Paragraph("Flags that can occur in this kind of run:"),
        Bullets(tuple(f"{short}: {meaning}" for short, meaning in labels.flag_legend(model.meta.kind))),
    ]
