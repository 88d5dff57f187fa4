"""The micro bench (``ftscale micro``): pyperf scaling of every workload in one process."""
