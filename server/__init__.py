"""The service under test: FastAPI endpoints over the workload registry, in four execution modes
(:mod:`server.executors`) and several topologies (:mod:`server.topology`, :mod:`server.loops`).

Start it with ``python -m server``; build it in-process with :func:`server.app.create_app`.
The same topologies serve a user's own ASGI app instead (``--app MODULE:ATTR``,
:mod:`server.userapp`); :func:`server.apps.make_app` decides which app a serving unit runs.
"""
