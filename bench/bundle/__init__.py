"""``ftscale bundle``: ftscale, its interpreters and their environments for an offline host.

:mod:`.make` stages and writes the bundle (the command), :mod:`.contents` decides what goes in
(builds, servers, extras, a preset's needs), :mod:`.parts` writes the compressed parts and the
``unpack.sh`` that checks and unpacks them. It sits above the benches: a bundle is made for what a
preset of the HTTP bench needs.
"""
