"""Your own app on GIL and free-threaded builds: ``ftscale app`` (benchmark it the way ``ftscale
bench`` benchmarks the service) and ``ftscale audit`` (which of its dependencies lack wheels or
turn the GIL back on)."""
