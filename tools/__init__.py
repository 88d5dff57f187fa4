"""Tools that drive the service from outside and are not part of the product: the soak
(``python -m tools.soak``, ``nox -s soak``) and the spread of connections over workers
(``python -m tools.spread``). Run from a checkout's root, with ftscale installed."""
