"""Typed declarations: ``Many[T]`` inputs checked before the run like any other input, relations
between collections as typed options (the old ``"KEY:OTHER"`` strings refused with the new form),
and model cards read through a schema that fails at ``initialize`` naming the file and the field."""

from __future__ import annotations

import json
import shutil

import pytest

from recotrig.algorithms.toy import SummaryWriter, ToyReader, TruthTracker, ZHistogramVertexer
from recotrig.edm import Tracks, Vertices
from recotrig.framework import Algorithm, ConfigError, Many, Sequencer
from recotrig.framework.flags import set_from_text
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.sequences.cli import main


class CountTracks(Algorithm):
    """Test helper: counts the tracks of several track collections."""

    serial = True

    def initialize(self) -> None:
        self.seen: list[dict[str, int]] = []

    def execute(self, tracks: Many[Tracks] = ("tracks",)) -> None:
        self.seen.append({key: len(collection) for key, collection in tracks.items()})


def toy(**kw) -> list[Algorithm]:
    return [
        ToyReader(events=3, **kw),
        TruthTracker(min_hits=3),
        TruthTracker(name="second", tracks="tracks_2"),
        ZHistogramVertexer(),
    ]


# -- Many[T] ----------------------------------------------------------------------------------------------
def test_many_input_gets_each_key_in_order():
    counter = CountTracks(tracks=["tracks_2", "tracks"])
    Sequencer([*toy(), counter]).run(progress=False)
    assert [list(seen) for seen in counter.seen] == [["tracks_2", "tracks"]] * 3
    assert all(seen["tracks"] == seen["tracks_2"] > 0 for seen in counter.seen)
    assert [p.name for p in counter.input_ports()] == ["tracks[tracks_2]", "tracks[tracks]"]


def test_a_missing_one_of_many_fails_before_the_run_naming_it_with_similar_keys():
    seq = Sequencer([*toy(), CountTracks(tracks=["tracks", "tracks_3"])])
    with pytest.raises(
        ConfigError,
        match=r"CountTracks input 'tracks\[tracks_3\]' reads key 'tracks_3', which no "
        r"algorithm produces; similar keys: 'tracks_2' \(from second\)",
    ):
        seq.plan()


def test_a_wrongly_typed_one_of_many_fails_before_the_run():
    seq = Sequencer([*toy(), CountTracks(tracks=["tracks", "vertices"])])
    with pytest.raises(
        ConfigError,
        match=r"type mismatch on key 'vertices': ZHistogramVertexer produces Vertices, "
        r"but CountTracks input 'tracks\[vertices\]' expects Tracks",
    ):
        seq.plan()


@pytest.mark.parametrize("value", ["tracks", ["tracks", ""], ["tracks", "tracks"], [1]])
def test_many_keys_must_be_a_list_of_distinct_names(value):
    with pytest.raises(ConfigError, match="store keys for 'tracks' must be a list of distinct non-empty strings"):
        CountTracks(tracks=value)


def test_many_keys_and_mappings_from_the_command_line():
    perf, writer = Performance(), StoreWriter()
    set_from_text([perf, writer], "Performance", "vertices", "vtx_a, vtx_b")
    set_from_text([perf, writer], "Performance", "tracks_of", "vtx_a=tracks,vtx_b=tracks")
    set_from_text([perf, writer], "StoreWriter", "names", '{"tracks": "trk"}')
    assert perf.keys("vertices") == ["vtx_a", "vtx_b"]
    assert perf.tracks_of == {"vtx_a": "tracks", "vtx_b": "tracks"}
    assert writer.names == {"tracks": "trk"}
    with pytest.raises(ConfigError, match=r"Performance.tracks_of: cannot use 'vtx_a': expected KEY=VALUE pairs"):
        set_from_text([perf], "Performance", "tracks_of", "vtx_a")
    with pytest.raises(ConfigError, match=r"option 'names' must map names to str values, got 'tracks': 3"):
        StoreWriter(names={"tracks": 3})


def test_optional_many_gives_none_for_an_absent_key(tmp_path):
    writer = SummaryWriter(path=str(tmp_path / "s.json"), collections=["hits", "nowhere"])
    Sequencer([ToyReader(events=2), writer]).run(progress=False)
    rows = json.loads((tmp_path / "s.json").read_text())["events"]
    assert [r["nowhere"] for r in rows] == [None, None] and all(r["hits"] > 0 for r in rows)


# -- typed relations ------------------------------------------------------------------------------------
def test_performance_relation_is_a_mapping_and_checked_against_its_inputs():
    ok = Sequencer(
        [*toy(), Performance(tracks=["tracks"], vertices=["vertices"], tracks_of={"vertices": "tracks"}, min_hits=3)]
    )
    ok.plan()
    bad = Sequencer([*toy(), Performance(tracks=["tracks"], vertices=["vertices"], tracks_of={"vertices": "tracks_2"})])
    with pytest.raises(
        ConfigError,
        match=r"tracks_of matches vertices 'vertices' to tracks 'tracks_2', which are not "
        r"among its tracks \['tracks'\]",
    ):
        bad.plan()


def test_old_vertex_string_is_refused_with_the_new_form():
    with pytest.raises(ConfigError) as err:
        Performance(vertices=["vtx_grid:tracks_ckf"])
    assert str(err.value) == (
        "Performance: vertices 'vtx_grid:tracks_ckf' is the old KEY:TRACKS form; write "
        "vertices=['vtx_grid'], tracks_of={'vtx_grid': 'tracks_ckf'} "
        "(--Performance.tracks_of vtx_grid=tracks_ckf)"
    )


def test_old_store_writer_string_is_refused_with_the_new_form(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"collections 'truth_vertices:vertices' is the old KEY:NAME form; write "
        r"collections=\[..., 'truth_vertices'\], names=\{'truth_vertices': "
        r"'vertices'\}",
    ):
        StoreWriter(path=str(tmp_path / "x.root"), collections=["hits", "truth_vertices:vertices"])
    assert list(tmp_path.iterdir()) == []


def test_store_writer_names_rename_in_the_file_and_must_name_a_written_key(tmp_path):
    from recotrig.io.store import open_store

    path = tmp_path / "out.root"
    Sequencer(
        [
            ToyReader(events=2),
            StoreWriter(path=str(path), collections=["hits", "truth_vertices"], names={"truth_vertices": "vertices"}),
        ]
    ).run(progress=False)
    assert open_store(str(path)).collections == ["hits", "vertices"]
    bad = Sequencer(
        [ToyReader(events=2), StoreWriter(path=str(tmp_path / "b.root"), collections=["hits"], names={"truth": "t"})]
    )
    with pytest.raises(ConfigError, match=r"names renames \['truth'\], which are not among its collections"):
        bad.plan()
    assert not (tmp_path / "b.root").exists()


def test_old_form_on_the_command_line_and_in_an_old_record_is_refused(tmp_path, capsys):
    assert (
        main(["run", "toy", "--dry-run", "-o", str(tmp_path / "o"), "--Performance.vertices", "vertices:tracks"]) == 1
    )
    err = capsys.readouterr().err
    assert err.strip() == (
        "recotrig run: error: Performance: vertices 'vertices:tracks' is the old KEY:TRACKS "
        "form; write vertices=['vertices'], tracks_of={'vertices': 'tracks'} "
        "(--Performance.tracks_of vertices=tracks)"
    )
    assert main(["run", "toy", "-n", "2", "-o", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    perf = next(a for a in record["record"]["algorithms"] if a["name"] == "Performance")
    del perf["keys"]["vertices"]
    perf["options"].pop("tracks_of")
    perf["options"]["vertices"] = ["vertices:tracks"]  # as an older version recorded it
    old = tmp_path / "old.json"
    old.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["run", "--config", str(old), "-o", str(tmp_path / "b")]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("recotrig run: error: Performance: vertices 'vertices:tracks' is the old KEY:TRACKS form; write")
    )
    assert not (tmp_path / "b").exists()


def test_vertex_figures_on_a_store_without_truth_vertices_fail_before_the_run():
    reader = ToyReader(events=2, truth_vertices="elsewhere")
    seq = Sequencer(
        [reader, TruthTracker(min_hits=3), ZHistogramVertexer(), Performance(tracks=["tracks"], vertices=["vertices"])]
    )
    with pytest.raises(
        ConfigError,
        match=r"Performance: vertex figures need input 'truth_vertices' \(key "
        r"'truth_vertices'\), which no algorithm produces",
    ):
        seq.plan()


def test_vertices_and_tracks_types_are_the_edm_ones():
    perf = Performance(tracks=["t"], vertices=["v"], triggers=["d"])
    types = {p.name: p.type for p in perf.input_ports()}
    assert types["tracks[t]"] is Tracks and types["vertices[v]"] is Vertices


# -- card schemas ---------------------------------------------------------------------------------------
def copied_model(tmp_path, name: str, edit) -> str:
    """A shipped model copied to ``tmp_path`` with its card edited by ``edit(card)``."""
    from recotrig.models import registry

    onnx = registry.locate(name)
    shutil.copyfile(onnx, tmp_path / onnx.name)
    card = json.loads(registry.card_path(onnx).read_text())
    edit(card)
    registry.card_path(tmp_path / onnx.name).write_text(json.dumps(card))
    return str(tmp_path / onnx.name)


def drop(*path):
    def edit(card):
        for part in path[:-1]:
            card = card[part]
        del card[path[-1]]

    return edit


def put(value, *path):
    def edit(card):
        for part in path[:-1]:
            card = card[part]
        card[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "algorithm, model, edit, message",
    [
        (
            "TrackFormerFinder",
            "trackformer-encreg-10-50",
            drop("sectors", "n"),
            "the card's field 'sectors.n' is missing",
        ),
        (
            "TrackFormerFinder",
            "trackformer-encreg-10-50",
            put("4000", "max_hits"),
            "the card's field 'max_hits' must be int, got '4000'",
        ),
        ("PVFinder", "pvfinder-unet-mu60", drop("binning", "bins"), "the card's field 'binning.bins' is missing"),
        (
            "PVFinder",
            "pvfinder-unet-mu60",
            put("high", "operating_points", "mu60", "threshold"),
            "the card's field 'operating_points.mu60.threshold' must be float, got 'high'",
        ),
        (
            "AnomalyTrigger",
            "anomaly-ae-zerobias-mu60",
            drop("fixed_point"),
            "the card's field 'fixed_point' is missing",
        ),
        (
            "AnomalyTrigger",
            "anomaly-ae-zerobias-mu60",
            put([1.0], "thresholds_khz"),
            "the card's field 'thresholds_khz' must be an object, got [1.0]",
        ),
    ],
)
def test_a_bad_card_fails_at_initialize_naming_the_file_and_the_field(tmp_path, algorithm, model, edit, message):
    pytest.importorskip("onnxruntime")
    from recotrig.algorithms.ml.anomaly_trigger import AnomalyTrigger
    from recotrig.algorithms.ml.pvfinder import PVFinder
    from recotrig.algorithms.ml.trackformer import TrackFormerFinder

    path = copied_model(tmp_path, model, edit)
    alg = {"TrackFormerFinder": TrackFormerFinder, "PVFinder": PVFinder, "AnomalyTrigger": AnomalyTrigger}[algorithm]
    with pytest.raises(ConfigError) as err:
        alg(model=path).initialize()
    card_file = path.replace(".onnx", ".card.json")
    assert str(err.value) == f"{algorithm}: {card_file}: {message}"


def test_every_shipped_card_loads_with_its_family_schema():
    from recotrig.models import cards, registry

    for name in registry.available():
        model = registry.load(name)
        assert type(model.typed_card) is cards.SCHEMAS[model.card["family"]]
        assert model.typed_card.name == model.card["name"] == name


def test_recotrig_models_refuses_a_broken_card_in_one_line(tmp_path, capsys):
    path = copied_model(tmp_path, "pvfinder-unet-mu60", put({"bins": 4000}, "binning"))
    assert main(["models", path]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == f"recotrig models: error: {path.replace('.onnx', '.card.json')}: the card's field 'binning.z_min' "
        "is missing"
    )
