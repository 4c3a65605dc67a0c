"""Where ``recotrig train`` puts a model: ``recotrig-models/`` (or ``--output``) by default, never
over an existing model without ``--force``, into the shipped models only with
``--replace-shipped``, and nothing in place until the training has ended well."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from recotrig.models import registry
from recotrig.models.registry import ModelError
from recotrig.sequences.cli import main
from recotrig.sequences.samples import SAMPLE_MU20, SAMPLE_MU60

FAMILIES = ("trackformer", "pvfinder", "anomaly")
TINY_TRACKFORMER = [
    "--stores",
    f"{SAMPLE_MU60},{SAMPLE_MU20},{SAMPLE_MU20}",
    "--epochs",
    "2",
    "--seed",
    "3",
    "--draws",
    "2",
    "--d",
    "16",
    "--layers",
    "1",
    "--heads",
    "2",
    "--batch",
    "4",
    "--lr",
    "3e-3",
    "--threads",
    "1",
    "--max-events",
    "2",
    "--no-progress",
]
FINDER = """
from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.io.hit_reader import HitReader

def build(*, input, output):
    return [HitReader(input=input, volumes=[7, 8, 9], tracks_per_event=15), TrackFormerFinder()]
"""


def shipped_digests() -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(registry.SHIPPED.iterdir()) if p.is_file()
    }


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh current directory and cache; the shipped models byte-identical at the end."""
    before = shipped_digests()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path
    assert shipped_digests() == before


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".")]


def test_default_training_writes_the_user_folder_and_the_model_runs_by_path(workdir, capsys):
    """The issue's case: `recotrig train trackformer` with the shipped model's name and default
    options. It goes to recotrig-models/, a second run does not replace it, and a sequence runs it."""
    name = "trackformer-encreg-10-50"  # the default name is a shipped model's
    assert main(["train", "trackformer", *TINY_TRACKFORMER]) == 0
    out = capsys.readouterr().out
    assert f"wrote model {name} to recotrig-models/ ({name}.card.json, {name}.card.md, {name}.onnx)" in out
    onnx = workdir / "recotrig-models" / f"{name}.onnx"
    assert registry.load(str(onnx), family="trackformer").card["hyper_parameters"]["epochs"] == 2
    assert not leftovers(workdir / "recotrig-models")
    written = {p.name: p.read_bytes() for p in (workdir / "recotrig-models").iterdir()}

    assert main(["train", "trackformer", *TINY_TRACKFORMER]) == 1  # refused before any training
    err = capsys.readouterr().err
    assert f"recotrig-models/{name}.onnx exists; choose another --name, or --force" in err
    assert {p.name: p.read_bytes() for p in (workdir / "recotrig-models").iterdir()} == written

    (workdir / "finder.py").write_text(FINDER)
    assert (
        main(
            [
                "run",
                "finder.py",
                "--input",
                str(SAMPLE_MU20),
                "-n",
                "1",
                "--TrackFormerFinder.model",
                f"recotrig-models/{name}.onnx",
                "-o",
                "out",
                "--no-progress",
            ]
        )
        == 0
    )
    record = json.loads((workdir / "out" / "run.json").read_text())["record"]
    assert [f["path"] for f in record["files"]["model"]] == [f"recotrig-models/{name}.onnx"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("where", ["shipped", "inside-shipped"])
def test_shipped_folder_is_refused_without_replace_shipped(workdir, capsys, family, where):
    target = registry.SHIPPED if where == "shipped" else registry.SHIPPED / "sub"
    assert main(["train", family, "--output", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    where = "is" if where == "shipped" else "is inside"
    assert err == (
        f"recotrig train: error: {target} {where} the shipped models' folder; a training writes there "
        "only with --replace-shipped (default: recotrig-models/ in the current directory)"
    )
    assert not (registry.SHIPPED / "sub").exists()


@pytest.mark.parametrize("family", FAMILIES)
def test_replace_shipped_goes_nowhere_else_and_names_are_file_names(workdir, capsys, family):
    assert main(["train", family, "--replace-shipped", "--output", "mine"]) == 1
    assert "--replace-shipped writes into the shipped models' folder" in capsys.readouterr().err
    assert main(["train", family, "--name", "../escape"]) == 1
    assert "--name '../escape': a model name is a file name" in capsys.readouterr().err
    assert not (workdir / "mine").exists() and not (workdir / "recotrig-models").exists()


def args(output: str | None = None, force: bool = False, replace_shipped: bool = False) -> argparse.Namespace:
    return argparse.Namespace(output=output, force=force, replace_shipped=replace_shipped)


def write_model(folder: Path, name: str, text: str) -> None:
    for suffix in (".onnx", ".card.json", ".card.md"):
        (folder / f"{name}{suffix}").write_text(text + suffix)


def test_the_shared_mechanism_replaces_only_when_asked(tmp_path, monkeypatch, capsys):
    from recotrig.training import common as training

    monkeypatch.chdir(tmp_path)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    write_model(shipped, "m", "old")
    monkeypatch.setattr(training, "SHIPPED", shipped)

    with pytest.raises(ModelError, match=r"shipped is the shipped models' folder; .* only with --replace-shipped"):
        training.model_output(args(str(shipped), force=True), "m")  # --force does not open the shipped folder
    with training.model_output(args(replace_shipped=True), "m").staged() as stage:
        write_model(stage, "m", "new")
    assert (shipped / "m.onnx").read_text() == "new.onnx" and (shipped / "m.card.md").read_text() == "new.card.md"
    assert "wrote model m to " in capsys.readouterr().out and not leftovers(shipped)

    target = training.model_output(args(), "m")
    assert target.directory == Path("recotrig-models")
    with target.staged() as stage:
        write_model(stage, "m", "first")
    with pytest.raises(ModelError, match=r"recotrig-models/m\.onnx exists; .* --force"):
        training.model_output(args(), "m")
    with training.model_output(args(force=True), "m").staged() as stage:
        write_model(stage, "m", "second")
    assert (tmp_path / "recotrig-models" / "m.onnx").read_text() == "second.onnx"


def test_a_failed_training_changes_nothing_and_leaves_no_temporary(tmp_path, monkeypatch):
    from recotrig.training import common as training

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "recotrig-models"
    folder.mkdir()
    write_model(folder, "m", "kept")
    with pytest.raises(RuntimeError, match="evaluation failed"):
        with training.model_output(args(force=True), "m").staged() as stage:
            write_model(stage, "m", "half")
            raise RuntimeError("evaluation failed")
    assert sorted(p.name for p in folder.iterdir()) == ["m.card.json", "m.card.md", "m.onnx"]
    assert (folder / "m.onnx").read_text() == "kept.onnx"

    target = training.model_output(args(), "other")
    with pytest.raises(ModelError, match=r"other\.card\.md exists"):
        with target.staged() as stage:  # another training wrote the name meanwhile: nothing replaced
            (folder / "other.card.md").write_text("theirs")
            write_model(stage, "other", "mine")
    assert (folder / "other.card.md").read_text() == "theirs" and not (folder / "other.onnx").exists()
    assert not leftovers(folder)


def test_pvfinder_main_writes_through_the_same_mechanism(workdir, monkeypatch, capsys):
    from recotrig.training.pvfinder import train as pvfinder

    def fake_train(*, name: str, out: Path, **options) -> dict:
        write_model(out, name, "unet")
        return {
            k: k for k in ("name", "held_out", "validation", "peak_finder", "onnx_vs_torch_max_abs_diff", "training")
        }

    monkeypatch.setattr(pvfinder, "train", fake_train)
    assert main(["train", "pvfinder", "--output", "mine"]) == 0
    assert "wrote model pvfinder-unet-mu60 to mine/" in capsys.readouterr().out
    assert (workdir / "mine" / "pvfinder-unet-mu60.onnx").read_text() == "unet.onnx"
    assert main(["train", "pvfinder", "--output", "mine"]) == 1
    assert "mine/pvfinder-unet-mu60.onnx exists" in capsys.readouterr().err


def test_tiny_anomaly_training_writes_its_four_files_to_the_user_folder(workdir, monkeypatch, capsys):
    """The anomaly main end to end on the bundled L1 sample (its data sets stand in for the
    generated ones): the ONNX file, the card and the fixed-point spec go to recotrig-models/."""
    from recotrig.edm.trigger import l1_features
    from recotrig.io.l1_reader import L1Reader
    from recotrig.sequences.samples import L1_SAMPLE
    from recotrig.sim.premix import PROCESS_CODES
    from recotrig.training.anomaly import dataset

    names = {code: name for name, code in PROCESS_CODES.items()}
    reader = L1Reader(input=L1_SAMPLE)
    reader.prepare(0, reader.n_events())
    by_process: dict[str, list] = {}
    for entry in range(reader.n_events()):
        objects, crossing = reader.read(entry)
        by_process.setdefault(names[int(crossing.process[0])], []).append(l1_features(objects))
    x = {k: np.stack(v) for k, v in by_process.items()}
    splits = {"train": x["zerobias"][:6000], "val": x["zerobias"][6000:8000], "test": x["zerobias"][8000:]}
    monkeypatch.setattr(dataset, "background", lambda name, split, jobs=2: (splits[split], {"split": split}))
    monkeypatch.setattr(dataset, "signal", lambda name, process, jobs=2: (x[process], {"process": process}))

    assert (
        main(
            [
                "train",
                "anomaly",
                "--kind",
                "ae",
                "--sizes",
                "57,8,4",
                "--epochs",
                "1",
                "--qat-epochs",
                "1",
                "--threads",
                "1",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    name = "anomaly-ae-zerobias-mu60"  # a shipped model's name
    assert f"wrote model {name} to recotrig-models/" in capsys.readouterr().out
    folder = workdir / "recotrig-models"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{name}{s}" for s in (".card.json", ".card.md", ".fixed.json", ".onnx")
    ]
    card = registry.load(str(folder / f"{name}.onnx"), family="anomaly").card
    assert card["architecture"]["sizes"] == [57, 8, 4]
    assert card["fixed_point"]["spec_sha256"] == registry.sha256(folder / f"{name}.fixed.json")
