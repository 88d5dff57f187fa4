"""Machine facts read from /sys, and the SMT-aware split of CPUs between server and load generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftscale.bench import machine


def fake_sys(root: Path, siblings: dict[int, str], online: str) -> Path:
    """A /sys/devices/system/cpu tree with the given thread_siblings_list per CPU."""
    (root / "online").parent.mkdir(parents=True, exist_ok=True)
    (root / "online").write_text(online + "\n")
    for cpu, text in siblings.items():
        topology = root / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "thread_siblings_list").write_text(text + "\n")
    return root


def test_cpu_lists_in_linux_syntax() -> None:
    assert machine.parse_cpu_list("0-3,8") == [0, 1, 2, 3, 8]
    assert machine.parse_cpu_list("5") == [5]
    with pytest.raises(ValueError):
        machine.parse_cpu_list("3-1")


def test_topology_groups_smt_siblings_into_cores(tmp_path: Path) -> None:
    # 8 logical CPUs on 4 cores, siblings numbered like most x86 machines: (0, 4), (1, 5) ...
    root = fake_sys(tmp_path, {c: f"{c % 4},{c % 4 + 4}" for c in range(8)}, "0-7")
    cores = machine.cpu_topology(root)
    assert cores == [frozenset({0, 4}), frozenset({1, 5}), frozenset({2, 6}), frozenset({3, 7})]
    # restricted to the CPUs this process may use, a core keeps only its usable siblings
    assert machine.cpu_topology(root, cpus=[0, 1, 4]) == [frozenset({0, 4}), frozenset({1})]


def test_the_client_never_gets_a_sibling_of_a_server_cpu(tmp_path: Path) -> None:
    root = fake_sys(tmp_path, {c: f"{c % 8},{c % 8 + 8}" for c in range(16)}, "0-15")
    server, client = machine.split_cpus(range(16), machine.cpu_topology(root))
    assert client == [0, 1, 8, 9]  # a quarter of the 8 cores, both siblings of each
    assert server == [2, 3, 4, 5, 6, 7]  # one logical CPU per remaining core: siblings idle
    for cpu in client:
        assert cpu % 8 not in {s % 8 for s in server}


def test_without_smt_every_cpu_is_its_own_core() -> None:
    assert machine.split_cpus(range(16)) == (list(range(4, 16)), [0, 1, 2, 3])
    assert machine.split_cpus([0, 1]) == ([1], [0])
    with pytest.raises(ValueError, match="2 physical cores"):
        machine.split_cpus([0])


def test_two_siblings_of_one_core_are_not_enough(tmp_path: Path) -> None:
    root = fake_sys(tmp_path, {0: "0-1", 1: "0-1"}, "0-1")
    with pytest.raises(ValueError, match="2 physical cores"):
        machine.split_cpus([0, 1], machine.cpu_topology(root))


def test_clock_facts_are_none_where_the_machine_does_not_tell(tmp_path: Path) -> None:
    assert machine.governor(tmp_path) is None and machine.boost(tmp_path) is None
    for cpu, name in ((0, "performance"), (1, "powersave")):
        (tmp_path / f"cpu{cpu}" / "cpufreq").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}" / "cpufreq" / "scaling_governor").write_text(name + "\n")
    assert machine.governor(tmp_path) == "mixed: performance, powersave"
    (tmp_path / "intel_pstate").mkdir()
    (tmp_path / "intel_pstate" / "no_turbo").write_text("1\n")
    assert machine.boost(tmp_path) == "off"
