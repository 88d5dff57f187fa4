"""The sections of one run's report, each a function of the model (and the verdicts) to blocks.

One module per section or group of sections that belong together, in the order a report shows
them: :mod:`.intro` (the run, a GIL turned back on), :mod:`.answer` (the verdicts, each build's
candidate, the confirmation rounds), :mod:`.servers` (each server at its best, the designs
measured), :mod:`.open_loop`, :mod:`.streams`, :mod:`.reading` (how to read the report),
:mod:`.scaling` (per workload), :mod:`.failures` and :mod:`.metadata`; :mod:`.common` holds what
they share. The headline first screen, the in-process ceiling and the profiles are sections too,
older than this package, beside it in :mod:`ftscale.bench.report` (``headline``,
``ceiling_report``, ``profiles``); :mod:`ftscale.bench.report.run_report` puts them all in order.
"""
