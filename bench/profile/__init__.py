"""CPU profiles of benchmark cells with Linux ``perf``: why a cell stops scaling (``--profile``).

For each cell, one extra repetition runs under ``perf record`` (cpu-clock sampling with call
graphs, the whole process tree), kept apart from the measured repetitions, and its samples are
sorted into a small set of buckets (:class:`ftscale.vocab.Bucket`): Python code, shared
refcounting, lock waits, the lock fast path, the GIL, garbage collection, the allocator, the HTTP
stack and event loop, the kernel, the rest, and the idle capacity no thread used.

- :mod:`.perf`: probing perf once per run, the record and script commands, clean-up;
- :mod:`.stacks`: parsing ``perf script`` output and folding it into collapsed stacks;
- :mod:`.buckets`: the symbol -> bucket table, the one place it lives;
- :mod:`.attribute`: samples -> a cell's :class:`~ftscale.schema.Profile`;
- :mod:`.session`: recording a cell, in launch mode (micro) or attached to servers (HTTP).

Linux only; perf missing or not permitted is one line at the start of the run, which then goes
on without profiles.
"""
