"""Pure-Python kernels: the interpreter loop is the whole cost, so the GIL serialises all of it."""

from __future__ import annotations

from ftscale.vocab import WorkloadClass
from ftscale.workloads.checksum import fold_floats
from ftscale.workloads.registry import register

_PI = 3.14159265358979323
_SOLAR_MASS = 4 * _PI * _PI
_DAYS_PER_YEAR = 365.24

# (position, velocity, mass) of the Sun and the four gas giants, as in the Benchmarks Game.
_BODIES: tuple[tuple[tuple[float, float, float], tuple[float, float, float], float], ...] = (
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), _SOLAR_MASS),
    (
        (4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01),
        (
            1.66007664274403694e-03 * _DAYS_PER_YEAR,
            7.69901118419740425e-03 * _DAYS_PER_YEAR,
            -6.90460016972063023e-05 * _DAYS_PER_YEAR,
        ),
        9.54791938424326609e-04 * _SOLAR_MASS,
    ),
    (
        (8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01),
        (
            -2.76742510726862411e-03 * _DAYS_PER_YEAR,
            4.99852801234917238e-03 * _DAYS_PER_YEAR,
            2.30417297573763929e-05 * _DAYS_PER_YEAR,
        ),
        2.85885980666130812e-04 * _SOLAR_MASS,
    ),
    (
        (1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01),
        (
            2.96460137564761618e-03 * _DAYS_PER_YEAR,
            2.37847173959480950e-03 * _DAYS_PER_YEAR,
            -2.96589568540237556e-05 * _DAYS_PER_YEAR,
        ),
        4.36624404335156298e-05 * _SOLAR_MASS,
    ),
    (
        (1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01),
        (
            2.68067772490389322e-03 * _DAYS_PER_YEAR,
            1.62824170038242295e-03 * _DAYS_PER_YEAR,
            -9.51592254519715870e-05 * _DAYS_PER_YEAR,
        ),
        5.15138902046611451e-05 * _SOLAR_MASS,
    ),
)


def simulate(steps: int, mass: list[float]) -> int:
    """The n-body kernel: ``steps`` steps of the five bodies with the given masses."""
    pos = [list(p) for p, _, _ in _BODIES]
    vel = [list(v) for _, v, _ in _BODIES]
    pairs = [(i, j) for i in range(len(mass)) for j in range(i + 1, len(mass))]
    dt = 0.01
    for _ in range(steps):
        for i, j in pairs:
            (x1, y1, z1), (x2, y2, z2) = pos[i], pos[j]
            dx, dy, dz = x1 - x2, y1 - y2, z1 - z2
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** -1.5)
            b1m, b2m = mass[i] * mag, mass[j] * mag
            v1, v2 = vel[i], vel[j]
            v1[0] -= dx * b2m
            v1[1] -= dy * b2m
            v1[2] -= dz * b2m
            v2[0] += dx * b1m
            v2[1] += dy * b1m
            v2[2] += dz * b1m
        for p, v in zip(pos, vel):
            p[0] += dt * v[0]
            p[1] += dt * v[1]
            p[2] += dt * v[2]
    return fold_floats(*(c for p in pos for c in p))


def shared_masses() -> list[float]:
    """The module's own mass objects: every thread that reads them shares their reference counts."""
    return [m for _, _, m in _BODIES]


def private_masses() -> list[float]:
    """Copies of the masses made by this call (``m * 1.0`` makes a new float object)."""
    return [m * 1.0 for _, _, m in _BODIES]


@register(
    workload_class=WorkloadClass.PURE_PYTHON,
    size_meaning="simulation steps",
    default_size=2_000,
    max_size=180_000,
    large_max_size=1_000_000,
    smoke_size=10,
)
def nbody(steps: int) -> int:
    """N-body simulation of the Jovian planets (float arithmetic in Python loops).

    Everything the loop touches belongs to this call: fresh position and velocity lists (the
    classic version mutates module globals) and fresh mass objects. Reading the module's own
    float objects from several threads makes their reference counts shared, which on a
    free-threaded build is a cost of its own: that is ``nbody_shared``.
    """
    return simulate(steps, private_masses())


def _eval_a(i: int, j: int) -> float:
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def _a_times_u(u: list[float]) -> list[float]:
    n = len(u)
    return [sum(_eval_a(i, j) * u_j for j, u_j in enumerate(u)) for i in range(n)]


def _at_times_u(u: list[float]) -> list[float]:
    n = len(u)
    return [sum(_eval_a(j, i) * u_j for j, u_j in enumerate(u)) for i in range(n)]


@register(
    workload_class=WorkloadClass.PURE_PYTHON,
    size_meaning="matrix dimension n (cost grows as n squared)",
    default_size=32,
    max_size=380,
    large_max_size=2_000,
    smoke_size=4,
)
def spectral_norm(n: int) -> int:
    """Spectral norm of an infinite matrix by power iteration (function calls and generators)."""
    u = [1.0] * n
    v = u
    for _ in range(10):
        v = _at_times_u(_a_times_u(u))
        u = _at_times_u(_a_times_u(v))
    vbv = sum(ue * ve for ue, ve in zip(u, v))
    vv = sum(ve * ve for ve in v)
    return fold_floats(vbv, vv)
