"""Source distributions built in a test, for ``ftscale audit`` and ``ftscale app`` to build.

Each is a real sdist (``name-0.1.tar.gz``) with a ``pyproject.toml`` whose build backend lives in
the sdist itself (``backend-path``) and needs nothing from a package index, so pip builds it
offline, through its ordinary PEP 517 path (``pip wheel``, an isolated build environment). The
backend behaves as setuptools does where that matters here: it runs a script that imports a
module beside it, and it writes ``build/`` and ``<name>.egg-info/`` into the folder it builds in.
Kinds:

- ``pure``: a pure-Python package (``py3-none-any``);
- ``noslot``: a package whose C extension ``<name>._speedups`` has no ``Py_mod_gil`` slot, and
  whose ``__init__`` silences CPython's RuntimeWarning before importing it (as some packages
  do), so only the verbose mode can name it;
- ``slot``: the same extension declaring ``Py_mod_gil = Py_MOD_GIL_NOT_USED``;
- ``raises``: a backend whose build raises; ``header``: an extension including a header no
  system has; ``sleeps``: a build that outlasts any short time limit (it writes its pid first).
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

BACKEND = r'''
"""An in-tree PEP 517 backend for ftscale's tests: builds one package, pure or with a C extension."""

import base64, hashlib, json, os, subprocess, sys, sysconfig, time, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = json.load(open(os.path.join(HERE, "fixture.json")))
NAME, KIND = CONFIG["name"], CONFIG["kind"]


def get_requires_for_build_wheel(config_settings=None):
    return []


def _tag():
    if KIND == "pure":
        return "py3-none-any"
    version = "%d%d" % sys.version_info[:2]
    abi = "cp" + version + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")
    return "cp%s-%s-%s" % (version, abi, sysconfig.get_platform().replace("-", "_").replace(".", "_"))


def _record(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    # As a setup.py run by a build backend does (poetry-core's imports its build.py): a script that
    # imports a module beside it, which it finds only if Python puts the script's folder on its path.
    subprocess.run([sys.executable, os.path.join(HERE, "prepare.py")], check=True, cwd=HERE)
    # As setuptools does: scratch output in the folder being built.
    os.makedirs(os.path.join(HERE, "build"), exist_ok=True)
    os.makedirs(os.path.join(HERE, NAME + ".egg-info"), exist_ok=True)
    if KIND == "raises":
        raise RuntimeError("this fixture refuses to build")
    if KIND == "sleeps":
        with open(CONFIG["pid_file"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    files = {NAME + "/__init__.py": open(os.path.join(HERE, NAME, "__init__.py"), "rb").read()}
    if KIND != "pure":
        out = os.path.join(HERE, "build", "_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))
        cc = os.environ.get("CC", "gcc")
        include = sysconfig.get_paths()["include"]
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-I" + include, os.path.join(HERE, "speedups.c"),
                        "-o", out], check=True)
        files[NAME + "/_speedups" + sysconfig.get_config_var("EXT_SUFFIX")] = open(out, "rb").read()
    info = NAME + "-0.1.dist-info"
    files[info + "/METADATA"] = ("Metadata-Version: 2.1\nName: %s\nVersion: 0.1\n" % NAME).encode()
    purelib = "true" if KIND == "pure" else "false"
    wheel_text = "Wheel-Version: 1.0\nGenerator: ftscale-tests\nRoot-Is-Purelib: %s\nTag: %s\n"
    files[info + "/WHEEL"] = (wheel_text % (purelib, _tag())).encode()
    record = [_record(n, d) for n, d in files.items()] + [info + "/RECORD,,"]
    wheel = "%s-0.1-%s.whl" % (NAME, _tag())
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for n, d in files.items():
            archive.writestr(n, d)
        archive.writestr(info + "/RECORD", "\n".join(record) + "\n")
    return wheel
'''

PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""

SPEEDUPS = r"""
#include <Python.h>
HEADER
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
SLOTS
"""
NO_SLOT = """
/* Single-phase initialisation, no Py_mod_gil slot: not declared free-threading safe. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""
WITH_SLOT = """
static PyModuleDef_Slot slots[] = {{Py_mod_gil, Py_MOD_GIL_NOT_USED}, {0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, 0, methods, slots};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModuleDef_Init(&module); }
"""

INIT_PURE = "def answer():\n    return 42\n"
INIT_EXTENSION = "from ._speedups import answer\n"
INIT_SILENCED = textwrap.dedent(
    """\
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # hides CPython's "GIL has been enabled" warning
        from ._speedups import answer
    """
)


def project_files(name: str, kind: str, pid_file: Path | None = None) -> dict[str, str]:
    """The source tree of a fixture package ``name`` of ``kind`` (see the module docstring)."""
    config = {"name": name, "kind": kind, "pid_file": str(pid_file or "")}
    init = {"pure": INIT_PURE, "noslot": INIT_SILENCED}.get(kind, INIT_EXTENSION)
    files = {
        "pyproject.toml": PYPROJECT,
        "backend.py": BACKEND,
        "fixture.json": json.dumps(config),
        f"{name}/__init__.py": init,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        "prepare.py": "import prepare_helper\n",
        "prepare_helper.py": "",
    }
    if kind in ("noslot", "slot", "header"):
        header = "#include <ftscale_no_such_header.h>" if kind == "header" else ""
        slots = WITH_SLOT if kind == "slot" else NO_SLOT
        files["speedups.c"] = SPEEDUPS.replace("HEADER", header).replace("SLOTS", slots)
    return files


def write_project(folder: Path, name: str, kind: str) -> Path:
    """The fixture's source tree in ``folder`` (a local project, as ``-e FOLDER`` names one)."""
    for relative, text in project_files(name, kind).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def sdist(dest: Path, name: str, kind: str, pid_file: Path | None = None) -> Path:
    """``dest/<name>-0.1.tar.gz``: the fixture as a source distribution."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}-0.1.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for relative, text in project_files(name, kind, pid_file).items():
            data = text.encode()
            member = tarfile.TarInfo(f"{name}-0.1/{relative}")
            member.size, member.mode = len(data), 0o644
            archive.addfile(member, io.BytesIO(data))
    return path


def requirements(folder: Path, names: list[str], links: Path) -> Path:
    """A requirements file in ``folder`` asking for ``names``, found through ``--find-links``."""
    path = folder / "requirements.txt"
    path.write_text(f"--find-links {links}\n" + "".join(f"{n}==0.1\n" for n in names))
    return path
