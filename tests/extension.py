"""A tiny C extension that does not declare free-threading support, built for a test.

Importing it on a free-threaded build turns the GIL back on (its module definition has no
``Py_mod_gil`` slot), which is what ``ftscale audit`` and ``ftscale app`` must notice and name.
It is compiled with the target interpreter's own headers and packed as a wheel, so pip installs
it like any other binary distribution.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

SOURCE = r"""
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }

static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};

/* Single-phase initialisation and no Py_mod_gil slot: not declared free-threading safe. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "NAME", NULL, -1, methods};

PyMODINIT_FUNC PyInit_NAME(void) { return PyModule_Create(&module); }
"""

FACTS = (
    "import json, sys, sysconfig; print(json.dumps({'include': sysconfig.get_paths()['include'], "
    "'suffix': sysconfig.get_config_var('EXT_SUFFIX'), 'platform': sysconfig.get_platform(), "
    "'version': '%d%d' % sys.version_info[:2], 'ft': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))"
)


def compiler() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(python: Path, dest: Path, name: str = "gilfixture") -> Path:
    """Compile the extension for ``python`` and pack it as ``name-0.1-<tags>.whl`` in ``dest``."""
    cc = compiler()
    assert cc is not None, "no C compiler"
    facts = json.loads(
        subprocess.run([str(python), "-c", FACTS], capture_output=True, text=True, check=True).stdout
    )
    work = dest / f"{name}-build"
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.c").write_text(SOURCE.replace("NAME", name))
    library = work / f"{name}{facts['suffix']}"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", f"-I{facts['include']}", str(work / f"{name}.c"), "-o", str(library)],
        check=True,
    )
    abi = f"cp{facts['version']}{'t' if facts['ft'] else ''}"
    tag = f"cp{facts['version']}-{abi}-{facts['platform'].replace('-', '_').replace('.', '_')}"
    info = f"{name}-0.1.dist-info"
    files = {
        library.name: library.read_bytes(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n".encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: ftscale-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    wheel = dest / f"{name}-0.1-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for n, data in files.items():
            archive.writestr(n, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


GIL_APP = '''"""An app whose import turns the GIL back on: it imports gilfixture."""

import json

import gilfixture


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = json.dumps({"answer": gilfixture.answer()}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
'''


def gil_project(python: Path, folder: Path) -> Path:
    """A project in ``folder``: the extension's wheel for ``python`` (found through
    ``--find-links``), a requirements file asking for it, and ``gilapp:app`` importing it."""
    build_wheel(python, folder)
    (folder / "requirements.txt").write_text(f"--find-links {folder}\ngilfixture\n")
    (folder / "gilapp.py").write_text(GIL_APP)
    return folder
