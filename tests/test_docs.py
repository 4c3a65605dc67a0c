"""The documentation: the README's commands work as written on the bundled data, and the MkDocs
site builds with --strict (no broken link, no reference that does not resolve)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RECOTRIG = Path(sys.executable).parent / "recotrig"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def commands() -> list[str]:
    """Every command line of the README's bash blocks, without its trailing comment."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            if line:
                out.append(line)
    return out


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_readme_shows_the_two_commands_first():
    assert commands()[:2] == ["make run", "make test"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A fresh directory holding the bundled data (as the repository root does) and the README's
    first sequence saved under the name the README gives it."""
    work = tmp_path_factory.mktemp("readme")
    (work / "data").symlink_to(ROOT / "data")
    steering = [b for b in blocks("python") if "def build" in b]
    assert len(steering) == 1
    (work / "my_sequence.py").write_text(steering[0])
    return work


# `make test` is this suite; `make run` is `recotrig run` after the set-up, run as such below
@pytest.mark.parametrize("line", [c for c in commands() if c.startswith("recotrig")] + ["recotrig run"])
def test_readme_command_works_as_written(line, workdir):
    argv = line.split()
    env = dict(os.environ, PATH=f"{RECOTRIG.parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([str(RECOTRIG), *argv[1:]], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{line}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    if argv[1] == "run" and "--help" not in argv and "--dry-run" not in argv:
        assert "output in " in out.stdout


def test_the_first_sequence_compares_ckf_and_amvf(workdir):
    out = subprocess.run(
        [
            str(RECOTRIG),
            "run",
            "my_sequence.py",
            "--input",
            "data/sample_mu20_ttbar.root",
            "-n",
            "1",
            "-o",
            "first",
            "--no-progress",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "ActsCKF [tracks_ckf]" in out.stdout and "amvf_grid(seeder=adaptive_grid) [vtx_grid]" in out.stdout
    assert (workdir / "first" / "comparison.json").is_file()


def test_documentation_site_builds_strictly(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "Sequencer" in api and "HitReader" in api  # the API pages come from the docstrings
    cards = (tmp_path / "site" / "models" / "cards" / "index.html").read_text()
    for card in (ROOT / "models" / "shipped").glob("*.card.md"):
        assert card.name.removesuffix(".card.md") in cards


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target
