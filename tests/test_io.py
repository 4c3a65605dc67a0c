"""Event stores: TrackML CSV and ROOT (recotrig and ACTS layouts), round trips and error messages."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recotrig.edm import Hits, HitTruth, Particles, Tracks, TruthVertices, Vertices
from recotrig.io.actsroot import SPEED_OF_LIGHT, decode_barcode, encode_barcode
from recotrig.io.store import Cells, StoreError, detect_format, open_store, open_writer, write_store

# ------------------------------------------------------------------------------------------------
# fixtures: stores written by hand in the documented TrackML layout

CHALLENGE = {
    "hits": """hit_id,x,y,z,volume_id,layer_id,module_id
1,-64.4099,-7.1637,-1502.5,7,2,1
2,-55.3361,0.635342,-1502.5,7,2,1
3,-83.8305,-1.14301,-1502.5,7,2,1
""",
    "cells": """hit_id,ch0,ch1,value
1,209,617,0.013832
1,210,617,0.079887
2,68,446,0.211723
3,58,954,0.112011
""",
    "particles": """particle_id,vx,vy,vz,px,py,pz,q,nhits
4503668346847232,-0.00928816,0.00986098,-0.0778789,-0.0552689,0.323272,-0.203492,-1,8
4503737066323968,-0.00928816,0.00986098,-0.0778789,-0.948125,0.470892,2.01006,1,11
""",
    "truth": """hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight
1,0,-64.4116,-7.16412,-1502.5,250710,-149908,-956385,0
2,4503668346847232,-55.3385,0.630805,-1502.5,-0.570605,0.0283904,-15.4922,1e-05
3,4503737066323968,-83.828,-1.14558,-1502.5,-0.174312,-0.00382288,-8.16995,8.5e-06
""",
}


def write_text(path: Path, text: str, *, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wt") as stream:
            stream.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def challenge(tmp_path: Path) -> Path:
    """Two events as in the Kaggle training set: event 1000 plain, event 1001 gzipped."""
    for event, gz in ((1000, False), (1001, True)):
        for kind, text in CHALLENGE.items():
            write_text(tmp_path / f"event{event:09d}-{kind}.csv", text, gz=gz)
    (tmp_path / "README.txt").write_text("not an event file")
    return tmp_path


def make_event(rng: np.random.Generator, n: int = 50) -> dict:
    """Collections with every optional column, in the containers' column order."""
    floats = np.array([np.nan, np.inf, -np.inf, 5e-324, 1 / 3, -0.0, 1e300, 123456.789012345678])
    x = rng.normal(0, 500, n)
    x[: min(n, len(floats))] = floats[: min(n, len(floats))]
    hits = Hits(
        hit_id=np.arange(1, n + 1),
        x=x,
        y=rng.normal(0, 500, n),
        z=rng.normal(0, 1000, n),
        t=rng.normal(0, 1, n),
        volume_id=rng.integers(7, 18, n),
        layer_id=rng.integers(2, 14, n),
        module_id=rng.integers(1, 3000, n),
        geometry_id=rng.integers(0, 2**63, n).astype(np.uint64) * np.uint64(2),
        loc0=rng.normal(size=n),
        loc1=rng.normal(size=n),
        var_loc0=rng.random(n),
        var_loc1=rng.random(n),
    )
    particle_ids = np.array([4503668346847232, 4503737066323968, 2**62 + 1])
    particles = Particles(
        particle_id=particle_ids,
        vx=rng.normal(size=3),
        vy=rng.normal(size=3),
        vz=rng.normal(size=3),
        px=rng.normal(size=3),
        py=rng.normal(size=3),
        pz=rng.normal(size=3),
        q=[-1, 1, 0],
        vt=rng.normal(size=3),
        nhits=[3, 4, 0],
        pdg=[211, -13, 22],
        vertex_id=[1, 1, 2],
        mass=[0.13957, 0.10566, 0.0],
        energy=rng.random(3),
    )
    truth = HitTruth(
        hit_id=hits.hit_id,
        particle_id=rng.choice(np.append(particle_ids, 0), n),
        tx=hits.x,
        ty=hits.y,
        tz=hits.z,
        tt=hits.t,
        tpx=rng.normal(size=n),
        tpy=rng.normal(size=n),
        tpz=rng.normal(size=n),
        weight=rng.random(n),
    )
    vertices = TruthVertices(
        vertex_id=[1, 2],
        x=[0.01, -0.02],
        y=[0.0, 0.03],
        z=[12.5, -40.0],
        t=[0.0, 0.1],
        n_charged=[25, 3],
        n_reconstructable=[20, 1],
        is_hard_scatter=[True, False],
    )
    return {"hits": hits, "particles": particles, "truth": truth, "vertices": vertices}


def assert_same(written: list[dict], read: list[dict]) -> None:
    assert len(written) == len(read)
    for a, b in zip(written, read):
        assert list(a) == list(b)
        for name in a:
            assert a[name].equals(b[name]), (name, a[name], b[name])


# ------------------------------------------------------------------------------------------------
# TrackML CSV


def test_challenge_store_reads_unchanged(challenge: Path) -> None:
    assert detect_format(challenge) == "trackml"
    store = open_store(challenge)
    assert store.format == "trackml"
    assert store.event_ids.tolist() == [1000, 1001]
    assert store.collections == ["hits", "cells", "particles", "truth"]
    assert store.metadata == {}
    plain, gz = store.read()
    for event in (plain, gz):
        hits, truth = event["hits"], event["truth"]
        assert isinstance(hits, Hits) and hits.names == list(Hits.columns) + ["volume_id", "layer_id", "module_id"]
        assert hits.x.tolist() == [-64.4099, -55.3361, -83.8305]
        assert hits.volume_id.dtype == np.int32
        assert truth.weight.tolist() == [0.0, 1e-05, 8.5e-06]
        assert truth.particle_id[1] == 4503668346847232
        assert event["particles"].nhits.tolist() == [8, 11]
        assert isinstance(event["cells"], Cells) and len(event["cells"]) == 4
    for name in plain:
        assert plain[name].equals(gz[name])


def test_hits_only_store_and_ids_from_file_names(tmp_path: Path) -> None:
    write_text(tmp_path / "event000000125-hits.csv", CHALLENGE["hits"], gz=True)
    write_text(tmp_path / "event000000003-hits.csv", CHALLENGE["hits"].replace("-64.4099", "1.5"))
    store = open_store(tmp_path)
    assert store.collections == ["hits"]
    assert store.event_ids.tolist() == [3, 125]
    (first,) = store.read(0, 1)
    assert first["hits"].x[0] == 1.5
    assert store.entry_of(125) == 1
    assert store.read(5, 9) == []  # clipped to the store
    with pytest.raises(StoreError, match="no collection"):
        store.read(collections=["truth"])


def test_truth_without_weight_leaves_it_absent(tmp_path: Path) -> None:
    write_text(tmp_path / "event000000001-hits.csv", CHALLENGE["hits"])
    lines = CHALLENGE["truth"].splitlines()
    no_weight = "\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n"
    write_text(tmp_path / "event000000001-truth.csv", no_weight)
    (event,) = open_store(tmp_path).read()
    assert "weight" not in event["truth"]
    assert "tx" in event["truth"]


def test_extra_columns_and_measurements_join_by_hit_id(tmp_path: Path) -> None:
    write_text(tmp_path / "event000000001-hits.csv", CHALLENGE["hits"].replace("module_id\n", "module_id\n", 1))
    # measurements in another order than the hits, with a column recotrig does not know
    write_text(tmp_path / "event000000001-measurements.csv", "hit_id,loc0,foo,t\n3,0.3,x,30\n1,0.1,y,10\n2,0.2,z,20\n")
    (event,) = open_store(tmp_path).read()
    hits = event["hits"]
    assert hits.loc0.tolist() == [0.1, 0.2, 0.3] and hits.t.tolist() == [10, 20, 30]
    assert "foo" not in hits.names


@pytest.mark.parametrize("compress", [False, True])
def test_trackml_round_trip(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(1)
    events = [make_event(rng, 40), make_event(rng, 0), make_event(rng, 7)]
    path = write_store(
        tmp_path / "store",
        events,
        format="trackml",
        event_ids=[7, 3, 123456789],
        metadata={"mu": 200},
        compress=compress,
    )
    suffix = ".csv.gz" if compress else ".csv"
    names = sorted(p.name for p in path.iterdir())
    assert f"event000000007-hits{suffix}" in names and f"event000000007-measurements{suffix}" in names
    assert f"event000000007-vertices{suffix}" in names and "metadata.json" in names
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # no temporary directory left
    with (gzip.open if compress else open)(path / f"event000000007-hits{suffix}", "rt") as stream:
        assert stream.readline().strip() == "hit_id,x,y,z,volume_id,layer_id,module_id"
    store = open_store(path)
    assert store.event_ids.tolist() == [3, 7, 123456789]  # entries follow the ids in the file names
    assert store.metadata == {"mu": 200}
    assert_same([events[1], events[0], events[2]], store.read())


def test_trackml_writer_refuses_other_collections_and_existing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no file for collection 'tracks'"):
        write_store(tmp_path / "a", [{"tracks": Tracks(hit_ids=[[1, 2]])}], format="trackml")
    write_store(tmp_path / "b", [make_event(np.random.default_rng(0), 3)], format="trackml")
    with pytest.raises(StoreError, match="already holds a store"):
        open_writer(tmp_path / "b", format="trackml")
    (tmp_path / "b" / "notes.txt").write_text("kept")
    with pytest.raises(RuntimeError), open_writer(tmp_path / "b", format="trackml", overwrite=True) as writer:
        writer.append(9, make_event(np.random.default_rng(0), 3))
        raise RuntimeError("interrupted")
    assert open_store(tmp_path / "b").event_ids.tolist() == [0]  # a failed run leaves the old store
    before = (tmp_path / "b").stat().st_ino
    write_store(
        tmp_path / "b", [make_event(np.random.default_rng(0), 3)], format="trackml", event_ids=[5], overwrite=True
    )
    assert open_store(tmp_path / "b").event_ids.tolist() == [5]
    assert (tmp_path / "b").stat().st_ino != before  # a new directory swapped in whole, not files moved one by one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert (tmp_path / "b" / "notes.txt").read_text() == "kept"


# ------------------------------------------------------------------------------------------------
# ROOT, recotrig layout


def test_root_round_trip_and_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    events = [make_event(rng, 30), make_event(rng, 0), make_event(rng, 11)]
    path = write_store(tmp_path / "ev.root", events, format="root", event_ids=[10, 11, 12], metadata={"seed": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["ev.root"]
    with uproot.open(path) as file:
        assert json.loads(str(file["metadata"])) == {"seed": 2}
        hits = file["hits"]
        assert hits.title == "recotrig:Hits"
        assert {"event_id", "n_hits", "x", "geometry_id", "loc0"} <= set(hits.keys())
        assert hits["event_id"].array(library="np").tolist() == [10, 11, 12]
        assert ak.num(hits["x"].array(), axis=1).tolist() == [30, 0, 11]
    store = open_store(path)
    assert detect_format(path) == "root" and store.layout == "recotrig"
    assert store.collections == ["hits", "particles", "truth", "vertices"]
    assert store.metadata == {"seed": 2}
    assert_same(events, store.read())
    assert_same(events[1:], store.read(1, 3))
    chunks = list(store.iterate(step=2, collections=["hits"]))
    assert [first for first, _ in chunks] == [0, 2]
    assert [len(c) for _, c in chunks] == [2, 1]
    info = store.info()
    assert info["events"] == 3 and info["collections"]["hits"]["rows_per_event"] == pytest.approx(41 / 3)
    assert info["collections"]["hits"]["bytes"] > 0
    json.dumps(info)


def test_root_generic_collections(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    events = [
        {
            "tracks": Tracks(
                hit_ids=[[1, 2, 3], [], [7]], z0=[1.0, 2.0, 3.0], cov=rng.normal(size=(3, 6, 6)), ndf=[1, 2, 3]
            ),
            "vertices_amvf": Vertices(x=[0.1], y=[0.2], z=[3.0], cov=rng.normal(size=(1, 4, 4)), track_index=[[0, 2]]),
        },
        {
            "tracks": Tracks(hit_ids=ak.Array([[4, 5]])[:0], z0=[], cov=np.zeros((0, 6, 6)), ndf=[]),
            "vertices_amvf": Vertices(
                x=[1.0, 2.0], y=[0.0, 0.0], z=[5.0, 6.0], cov=np.ones((2, 4, 4)), track_index=[[], [1]]
            ),
        },
    ]
    path = write_store(tmp_path / "reco.root", events, format="root")
    store = open_store(path)
    assert store.event_ids.tolist() == [0, 1]
    back = store.read()
    assert_same(events, back)
    assert back[0]["tracks"].cov.shape == (3, 6, 6)
    assert back[0]["tracks"].hit_ids.tolist() == [[1, 2, 3], [], [7]]


def test_root_reads_entry_ranges_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    events = [make_event(rng, 5) for _ in range(6)]
    path = write_store(tmp_path / "ev.root", events, format="root", chunk_events=2)
    calls: list[tuple] = []
    original = uproot.behaviors.TBranch.HasBranches.arrays

    def spy(self, *args, **kwargs):
        calls.append((kwargs.get("entry_start"), kwargs.get("entry_stop")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(uproot.behaviors.TBranch.HasBranches, "arrays", spy)
    store = open_store(path)
    wanted = [{k: e[k] for k in ("hits", "truth")} for e in events[2:4]]
    assert_same(wanted, store.read(2, 4, collections=["hits", "truth"]))
    assert calls == [(2, 4), (2, 4)]


@pytest.mark.parametrize("target", ["out.root", "out_csv"])
def test_failed_write_leaves_nothing(tmp_path: Path, target: str) -> None:
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error), open_writer(tmp_path / target) as writer:
            writer.append(1, make_event(np.random.default_rng(0), 5))
            raise error("stop")
        assert list(tmp_path.iterdir()) == []


def test_root_writer_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.root"
    writer = open_writer(target, chunk_events=1)
    writer.append(1, make_event(np.random.default_rng(0), 5))
    writer.append(2, make_event(np.random.default_rng(1), 5))
    assert not target.exists()
    writer.close()
    assert open_store(target).event_ids.tolist() == [1, 2]


def test_root_writer_checks_events(tmp_path: Path) -> None:
    event = make_event(np.random.default_rng(0), 5)
    with open_writer(tmp_path / "a.root") as writer:
        writer.append(1, event)
        with pytest.raises(StoreError, match="event 2.*collections"):
            writer.append(2, {"hits": event["hits"]})
        with pytest.raises(StoreError, match="event 1: event id written twice"):
            writer.append(1, event)
        fewer = dict(event, hits=Hits(hit_id=[1], x=[0.0], y=[0.0], z=[0.0]))
        with pytest.raises(StoreError, match="event 3.*columns"):
            writer.append(3, fewer)


def test_store_pickles(tmp_path: Path) -> None:
    events = [make_event(np.random.default_rng(5), 4)]
    path = write_store(tmp_path / "ev.root", events, format="root")
    store = open_store(path)
    store.read()
    clone = pickle.loads(pickle.dumps(store))
    assert_same(events, clone.read())


# ------------------------------------------------------------------------------------------------
# ROOT, ACTS layouts


def write_acts_file(path: Path) -> None:
    """Trees with the branch names of ACTS's RootParticleWriter and RootSimHitWriter."""
    f32 = np.float32
    with uproot.recreate(path) as file:
        particles = {
            "event_id": np.array([4, 5], np.uint32),
            "particle_type": ak.Array([[211, -211, 22], [13]]),
            "vx": ak.values_astype(ak.Array([[0.1, 0.1, 5.0], [0.0]]), f32),
            "vy": ak.values_astype(ak.Array([[0.2, 0.2, 5.0], [0.0]]), f32),
            "vz": ak.values_astype(ak.Array([[10.0, 10.0, 50.0], [-3.0]]), f32),
            "vt": ak.values_astype(ak.Array([[SPEED_OF_LIGHT, SPEED_OF_LIGHT, 0.0], [0.0]]), f32),
            "px": ak.values_astype(ak.Array([[1.0, -1.0, 0.5], [2.0]]), f32),
            "py": ak.values_astype(ak.Array([[0.0, 0.5, 0.5], [2.0]]), f32),
            "pz": ak.values_astype(ak.Array([[3.0, 1.0, 0.0], [2.0]]), f32),
            "m": ak.values_astype(ak.Array([[0.1396, 0.1396, 0.0], [0.1057]]), f32),
            "q": ak.values_astype(ak.Array([[1.0, -1.0, 0.0], [-1.0]]), f32),
            "vertex_primary": ak.values_astype(ak.Array([[1, 1, 1], [2]]), np.uint32),
            "vertex_secondary": ak.values_astype(ak.Array([[0, 0, 1], [0]]), np.uint32),
            "particle": ak.values_astype(ak.Array([[1, 2, 1], [1]]), np.uint32),
            "generation": ak.values_astype(ak.Array([[0, 0, 1], [0]]), np.uint32),
            "sub_particle": ak.values_astype(ak.Array([[0, 0, 0], [0]]), np.uint32),
            "number_of_hits": ak.values_astype(ak.Array([[2, 1, 0], [0]]), np.uint32),
        }
        write_tree(file, "particles", particles)
        n = 3
        hits = {
            "event_id": np.array([4, 4, 4], np.uint32),
            "geometry_id": np.array([2**56 + 1, 2**56 + 2, 2**57], np.uint64),
            "tx": np.array([30.0, 70.0, 31.0], f32),
            "ty": np.zeros(n, f32),
            "tz": np.ones(n, f32),
            "tt": np.full(n, 2 * SPEED_OF_LIGHT, f32),
            "tpx": np.ones(n, f32),
            "tpy": np.zeros(n, f32),
            "tpz": np.zeros(n, f32),
            "te": np.ones(n, f32),
            "deltapx": np.zeros(n, f32),
            "index": np.array([0, 1, 0], np.int32),
            "volume_id": np.array([8, 8, 9], np.uint32),
            "layer_id": np.array([2, 4, 2], np.uint32),
            "sensitive_id": np.array([11, 12, 13], np.uint32),
            "barcode_vertex_primary": np.array([1, 1, 1], np.uint32),
            "barcode_vertex_secondary": np.zeros(n, np.uint32),
            "barcode_particle": np.array([1, 1, 2], np.uint32),
            "barcode_generation": np.zeros(n, np.uint32),
            "barcode_sub_particle": np.zeros(n, np.uint32),
        }
        write_tree(file, "hits", hits)


def write_tree(file: uproot.WritableDirectory, name: str, branches: dict) -> None:
    types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()}
    file.mktree(name, types).extend(branches)


def test_acts_layouts(tmp_path: Path) -> None:
    path = tmp_path / "acts.root"
    write_acts_file(path)
    store = open_store(path)
    assert store.layout == "acts"
    assert store.collections == ["particles", "vertices", "hits", "truth"]
    assert store.event_ids.tolist() == [4, 5]
    first, second = store.read()
    particles = first["particles"]
    assert (
        particles.particle_id.tolist() == encode_barcode([1, 1, 1], [0, 0, 1], [1, 2, 1], [0, 0, 1], [0, 0, 0]).tolist()
    )
    assert particles.vt.tolist() == pytest.approx([1.0, 1.0, 0.0])  # mm -> ns
    assert particles.q.tolist() == [1, -1, 0] and particles.pdg.tolist() == [211, -211, 22]
    assert particles.vertex_id.tolist() == [1, 1, 1]
    vertices = first["vertices"]
    assert vertices.vertex_id.tolist() == [1] and vertices.n_charged.tolist() == [2]
    assert vertices.z.tolist() == [10.0]
    hits, truth = first["hits"], first["truth"]
    assert hits.hit_id.tolist() == [0, 1, 2] and hits.x.tolist() == [30.0, 70.0, 31.0]
    assert hits.t.tolist() == pytest.approx([2.0] * 3) and hits.module_id.tolist() == [11, 12, 13]
    assert hits.geometry_id.dtype == np.uint64
    assert truth.particle_id.tolist() == [particles.particle_id[0]] * 2 + [particles.particle_id[1]]
    assert len(second["hits"]) == 0 and len(second["truth"]) == 0  # no hits in event 5
    info = store.info()
    assert info["collections"]["hits"]["layout"] == "acts-hits"
    assert info["collections"]["particles"]["rows_per_event"] == 2.0


def test_barcode_packing() -> None:
    parts = ([1, 4095], [0, 3], [7, 65535], [0, 255], [0, 65535])
    ids = encode_barcode(*parts)
    assert ids.dtype == np.int64 and ids[0] == (1 << 52) | (7 << 24)
    assert [v.tolist() for v in decode_barcode(ids).values()] == [list(p) for p in parts]
    with pytest.raises(ValueError, match="particle"):
        encode_barcode([1], [0], [1 << 16], [0], [0])


# ------------------------------------------------------------------------------------------------
# error messages: file, event, column (and row) named


def test_missing_file_for_one_event(challenge: Path) -> None:
    (challenge / "event000001001-truth.csv.gz").unlink()
    store = open_store(challenge)
    store.read(0, 1)  # event 1000 is complete
    with pytest.raises(StoreError) as err:
        store.read(1, 2, collections=["hits", "truth"])
    message = str(err.value)
    assert "event000001001-truth.csv" in message and "event 1001" in message and "1 of 2 events" in message
    assert err.value.event == 1001


def test_missing_column(tmp_path: Path) -> None:
    write_text(tmp_path / "event000000042-hits.csv", CHALLENGE["hits"].replace(",z,", ",zz,"))
    with pytest.raises(StoreError) as err:
        open_store(tmp_path).read()
    message = str(err.value)
    assert "event000000042-hits.csv" in message and "event 42" in message and "'z'" in message


@pytest.mark.parametrize(
    "old, new, column, what",
    [
        ("-55.3361", "abc", "x", "not a number"),
        ("2,-55.3361,0.635342,-1502.5,7", "2,-55.3361,0.635342,-1502.5,7.5", "volume_id", "not an integer"),
        ("2,-55.3361,0.635342,-1502.5,7", "2,-55.3361,0.635342,-1502.5,", "volume_id", "missing value"),
    ],
)
def test_bad_value_names_row(tmp_path: Path, old: str, new: str, column: str, what: str) -> None:
    write_text(tmp_path / "event000000008-hits.csv", CHALLENGE["hits"].replace(old, new), gz=True)
    with pytest.raises(StoreError) as err:
        open_store(tmp_path).read()
    message = str(err.value)
    assert "event000000008-hits.csv.gz" in message and "event 8" in message
    assert f"column {column!r}" in message and "row 1" in message and what in message


def test_truncated_gzip(tmp_path: Path) -> None:
    path = write_text(tmp_path / "event000000001-hits.csv", CHALLENGE["hits"] * 200, gz=True)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(StoreError, match="event000000001-hits.csv.gz.*event 1"):
        open_store(tmp_path).read()


def test_bad_metadata(challenge: Path) -> None:
    (challenge / "metadata.json").write_text("[1, 2")
    with pytest.raises(StoreError, match="metadata.json"):
        _ = open_store(challenge).metadata


def test_root_file_errors(tmp_path: Path) -> None:
    path = write_store(tmp_path / "ev.root", [make_event(np.random.default_rng(0), 500)], format="root")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="truncated.root.*truncated or damaged"):
        open_store(truncated)
    other = tmp_path / "notes.root"
    other.write_text("just text")
    with pytest.raises(StoreError, match="notes.root: not a ROOT file"):
        open_store(other)
    with pytest.raises(StoreError, match="ev.root: the store has no collection.*'tracks'.*'hits'"):
        open_store(path).read(collections=["tracks"])
    with pytest.raises(StoreError, match="missing.root: no such file"):
        open_store(tmp_path / "missing.root")


def test_root_missing_branch(tmp_path: Path) -> None:
    path = tmp_path / "partial.root"
    with uproot.recreate(path) as file:
        tree = file.mktree(
            "hits", {"event_id": np.int64, "x": "var * float64", "y": "var * float64"}, title="recotrig:Hits"
        )
        tree.extend({"event_id": np.array([1]), "x": ak.Array([[1.0]]), "y": ak.Array([[2.0]])})
    with pytest.raises(StoreError) as err:
        open_store(path)
    message = str(err.value)
    assert "partial.root" in message and "tree 'hits'" in message and "'hit_id'" in message


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such file"):
        open_store(tmp_path / "nothing")
    with pytest.raises(StoreError, match="no TrackML event files"):
        open_store(tmp_path)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(StoreError, match="x.txt: not a store"):
        open_store(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="unknown store format"):
        open_store(tmp_path, format="hdf5")
