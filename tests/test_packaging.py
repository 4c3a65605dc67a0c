"""The repository root is the package ``recotrig``; its ``io/`` folder never shadows the stdlib."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import recotrig
import recotrig.io

ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()

PROBE = (
    "import io, sys, recotrig.io, recotrig.framework, recotrig.sequences.cli; "
    "print(io.__file__); print(recotrig.io.__file__); print(io.BytesIO(b'x').read())"
)


def probe(cwd: Path, env: dict | None = None, args: tuple[str, ...] = ()) -> list[str]:
    out = subprocess.run(
        [sys.executable, *args, "-c", PROBE], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_stdlib_io_under_pytest():
    assert Path(io.__file__).resolve().parent == STDLIB
    assert Path(recotrig.io.__file__).resolve() == ROOT / "io" / "__init__.py"


def test_stdlib_io_when_python_runs_from_the_repository_root():
    stdlib_io, ours, data = probe(ROOT)
    assert Path(stdlib_io).resolve().parent == STDLIB
    assert Path(ours).resolve() == ROOT / "io" / "__init__.py"
    assert data == "b'x'"
    # with the repository root explicitly first on sys.path, too
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    stdlib_io, _, _ = probe(ROOT, env)
    assert Path(stdlib_io).resolve().parent == STDLIB


def test_installed_wheel_layout_and_stdlib_io(tmp_path):
    """Build the wheel, install it into a target folder, import from there (pip install .)."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("recotrig-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "recotrig/io/__init__.py" in names and "recotrig/framework/sequencer.py" in names
    assert "recotrig/data/sample_mu60_ttbar.root" in names  # the main job's default input travels along
    assert not [n for n in names if n.startswith(("io/", "framework/", "tests/"))]
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    env = dict(os.environ, PYTHONPATH=str(target))
    stdlib_io, ours, _ = probe(target, env)
    assert Path(stdlib_io).resolve().parent == STDLIB
    assert Path(ours).resolve() == target / "recotrig" / "io" / "__init__.py"


def test_editable_finder_maps_only_the_package_name(tmp_path):
    assert Path(recotrig.__file__).resolve() == ROOT / "__init__.py"
    out = subprocess.run([sys.executable, "-c", "import algorithms"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0  # folders are not top-level modules
