"""HitReader and StoreWriter inside sequences: both formats, selections, entry ranges, atomicity."""

from __future__ import annotations

import numpy as np
import pytest

from recotrig.algorithms.toy import ToyReader
from recotrig.framework import Algorithm, EventError, Option, Port, Sequencer
from recotrig.framework.testing import FailOn
from recotrig.io.hit_reader import HitReader
from recotrig.io.store import open_store
from recotrig.io.writers import StoreWriter
from recotrig.sequences.cli import main

STORE_COLLECTIONS = ["hits", "particles", "truth", "truth_vertices"]


class Collect(Algorithm):
    serial = True
    keys = Option(["hits"], "keys to keep", type=list)

    def input_ports(self):
        return [Port(k, k, object, optional=True) for k in self.keys]

    def initialize(self):
        self.seen = []

    def execute(self, **collections):
        self.seen.append(collections)


def make_store(path, events=6, **toy):
    seq = Sequencer(
        [
            ToyReader(events=events, **toy),
            StoreWriter(
                path=str(path),
                collections=STORE_COLLECTIONS,
                names={"truth_vertices": "vertices"},
                metadata={"made_by": "toy"},
            ),
        ]
    )
    seq.run(progress=False)
    return path


@pytest.fixture(params=["root", "trackml"])
def store(request, tmp_path):
    name = "toy.root" if request.param == "root" else "toy_csv"
    return make_store(tmp_path / name)


def read_all(path, **options):
    n_events = options.pop("_n", None)
    seq = Sequencer(
        [HitReader(input=str(path), **options), Collect(keys=["event", "hits", "particles", "truth", "truth_vertices"])]
    )
    seq.run(progress=False, n_events=n_events)
    return seq.algorithm("Collect").seen


def test_round_trip_through_sequences(store):
    original = Sequencer([ToyReader(events=6), Collect(keys=["hits", "particles", "truth", "truth_vertices"])])
    original.run(progress=False)
    for before, after in zip(original.algorithm("Collect").seen, read_all(store, compute_weights=False)):
        for key in ("hits", "particles", "truth", "truth_vertices"):
            assert before[key].equals(after[key]), key
    assert open_store(store).metadata["made_by"] == "toy"


def test_skip_and_n_map_to_entries(store):
    seq = Sequencer([HitReader(input=str(store)), Collect(keys=["event", "hits"])])
    result = seq.run(n_events=2, skip=3, progress=False)
    seen = seq.algorithm("Collect").seen
    assert [int(e["event"].event_id[0]) for e in seen] == [3, 4] and result.processed == 2


def test_weights_computed_when_store_has_none(store):
    from recotrig.edm.truth import trackml_weights

    for event in read_all(store):
        weight = event["truth"].weight
        assert weight.sum() == pytest.approx(1.0) and np.all(weight >= 0)
        # exactly the official weights of the event, in truth order, computed from its particles
        truth = event["truth"].select(np.ones(len(event["truth"]), bool))
        expected = trackml_weights(event["particles"], truth, event["hits"])
        np.testing.assert_allclose(weight, expected, rtol=0, atol=1e-15)
        # toy tracks cross up to 10 layers: first and last hits weigh most (the official order weights)
        pid = event["truth"].particle_id
        one = pid == np.bincount(pid).argmax()
        order = np.argsort(np.abs(event["hits"].z[one]))
        w = weight[one][order]
        if len(w) >= 6:
            assert w[0] > w[len(w) // 2] and w[-1] > w[len(w) // 2]


def test_subsampling_is_seeded_and_consistent(store):
    first = read_all(store, tracks_per_event=10, seed=3)
    second = read_all(store, tracks_per_event=10, seed=3)
    other = read_all(store, tracks_per_event=10, seed=4)
    for a, b, _c in zip(first, second, other):
        assert len(np.unique(a["truth"].particle_id)) == 10
        assert a["hits"].equals(b["hits"])
        assert set(a["particles"].particle_id) == set(np.unique(a["truth"].particle_id))
        assert np.array_equal(np.sort(a["truth"].hit_id), np.sort(a["hits"].hit_id))
        assert a["truth"].weight.sum() == pytest.approx(1.0)
    assert any(not a["hits"].equals(c["hits"]) for a, c in zip(first, other))


def test_pt_and_volume_selection(store):
    for event in read_all(store, min_pt=2.0):
        particles = event["particles"]
        assert np.all(np.hypot(particles.px, particles.py) >= 2.0)


def test_volume_selection_on_a_real_detector():
    """The generic detector's hits span many volumes; the selection keeps exactly the chosen ones."""
    from recotrig.sequences.samples import SAMPLE_MU20

    everything = read_all(SAMPLE_MU20, _n=1)[0]
    volumes, counts = np.unique(everything["hits"].volume_id, return_counts=True)
    assert len(volumes) >= 6  # pixel, short- and long-strip barrels and end caps
    pixel = read_all(SAMPLE_MU20, _n=1, volumes=[7, 8, 9])[0]
    assert set(np.unique(pixel["hits"].volume_id)) == {7, 8, 9}
    assert len(pixel["hits"]) == counts[np.isin(volumes, [7, 8, 9])].sum()
    assert np.array_equal(np.sort(pixel["truth"].hit_id), np.sort(pixel["hits"].hit_id))


def test_selection_needing_truth_on_hits_only_store(tmp_path):
    path = tmp_path / "hits_only.root"
    Sequencer([ToyReader(events=2), StoreWriter(path=str(path), collections=["hits"])]).run(progress=False)
    seen = read_all(path)
    assert seen[0]["particles"] is None and seen[0]["truth"] is None and len(seen[0]["hits"]) > 0
    with pytest.raises(EventError, match="needs truth"):
        read_all(path, min_pt=1.0)


def test_writer_leaves_nothing_when_run_fails(tmp_path):
    for name in ("out.root", "out_csv"):
        target = tmp_path / name
        seq = Sequencer(
            [
                ToyReader(events=5),
                FailOn(entries=[3]),
                StoreWriter(path=str(target), collections=["hits", "checked"], names={"checked": "event"}),
            ]
        )
        with pytest.raises(EventError):
            seq.run(progress=False)
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_cli_run_and_info_accept_both_formats(store, tmp_path, capsys):
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "6 events" in out and "hits" in out and "particles" in out
    steering = tmp_path / "read.py"
    steering.write_text(
        "from recotrig.io.hit_reader import HitReader\n"
        "from recotrig.algorithms.toy import TruthTracker\n"
        "from recotrig.io.writers import StoreWriter\n"
        "def build(*, input, output):\n"
        "    return [HitReader(input=input), TruthTracker(),\n"
        "            StoreWriter(path=output + '/tracks.root', collections=['tracks'])]\n"
    )
    out_dir = tmp_path / "out"
    assert main(["run", str(steering), "--input", str(store), "-o", str(out_dir), "-n", "3", "--no-progress"]) == 0
    written = open_store(out_dir / "tracks.root")
    assert written.n_events == 3 and written.collections == ["tracks"]
