"""The engine: data-flow checks, ordering, error policies, timing, parallel events."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recotrig.algorithms.toy import SummaryWriter, ToyReader, TruthTracker, ZHistogramVertexer
from recotrig.edm import EventInfo, Hits, Tracks, Vertices
from recotrig.framework import (
    Algorithm,
    ConfigError,
    EventError,
    EventStore,
    MissingKeyError,
    Option,
    Sequencer,
)
from recotrig.framework.store import DuplicateKeyError
from recotrig.framework.testing import Combine, FailOn, Relabel


def toy_sequence(tmp_path, **reader):
    return [
        SummaryWriter(path=str(tmp_path / "summary.json")),  # inserted first on purpose: order is by dependency
        ZHistogramVertexer(),
        TruthTracker(),
        ToyReader(events=12, **reader),
    ]


def test_toy_sequence_end_to_end(tmp_path):
    result = Sequencer(toy_sequence(tmp_path)).run(progress=False)
    assert result.processed == 12 and not result.failures
    rows = json.loads((tmp_path / "summary.json").read_text())["events"]
    assert [r["event_id"] for r in rows] == list(range(12))
    # every toy event has >= 1 vertex of >= 2 tracks, and the z0 histogram finds vertices
    assert all(r["tracks"] > 0 and r["hits"] >= 3 * r["tracks"] for r in rows)
    assert sum(r["vertices"] for r in rows) >= 12
    names = [row["algorithm"] for row in result.timing]
    assert names == ["ToyReader", "TruthTracker", "ZHistogramVertexer", "SummaryWriter"]
    assert all(row["calls"] == 12 for row in result.timing)
    assert sum(row["share"] for row in result.timing) == pytest.approx(1.0)
    assert "median ms" in result.timing_table()


def test_toy_vertexing_is_physically_sensible(tmp_path):
    """Truth tracks with 0.05 mm hits: vertices found at the generated z within 1 mm."""
    seq = Sequencer(
        [
            ToyReader(events=5, vertices=3),
            TruthTracker(),
            ZHistogramVertexer(),
            Collect(keys=["truth_vertices", "vertices"]),
        ]
    )
    seq.run(progress=False)
    collected = seq.algorithm("Collect").seen
    matched = total = 0
    for event in collected:
        truth_z = event["truth_vertices"].z
        reco_z = event["vertices"].z
        total += len(truth_z)
        matched += sum(np.min(np.abs(reco_z - z)) < 1.0 for z in truth_z) if len(reco_z) else 0
    assert matched >= 0.8 * total


class Collect(Algorithm):
    """Test helper: keeps the collections it is given (runs in the main process)."""

    serial = True
    keys = Option(["hits"], "keys to keep", type=list)

    def input_ports(self):
        from recotrig.framework import Port

        return [Port(k, k, object) for k in self.keys]

    def initialize(self):
        self.seen = []

    def execute(self, **collections):
        self.seen.append(collections)


# -- data-flow errors ------------------------------------------------------------------------------
def test_missing_producer_names_algorithm_key_and_similar_keys(tmp_path):
    algs = [ToyReader(events=2), TruthTracker(hits="hitz")]
    with pytest.raises(ConfigError) as err:
        Sequencer(algs).plan()
    message = str(err.value)
    assert "TruthTracker" in message and "'hitz'" in message and "'hits'" in message and "ToyReader" in message


def test_two_producers_of_one_key():
    with pytest.raises(ConfigError, match=r"key 'tracks' is produced twice: by T1 and by T2"):
        Sequencer([ToyReader(events=2), TruthTracker(name="T1"), TruthTracker(name="T2")]).plan()


def test_same_algorithm_twice_under_other_keys():
    seq = Sequencer(
        [
            ToyReader(events=3),
            TruthTracker(name="tight", tracks="tracks_tight", min_hits=8),
            TruthTracker(name="loose", tracks="tracks_loose", min_hits=3),
            ZHistogramVertexer(name="vtx_tight", tracks="tracks_tight", vertices="vertices_tight"),
            Collect(keys=["tracks_tight", "tracks_loose", "vertices_tight"]),
        ]
    )
    seq.run(progress=False)
    for event in seq.algorithm("Collect").seen:
        assert len(event["tracks_tight"]) < len(event["tracks_loose"])
        assert np.all(np.asarray([len(h) for h in event["tracks_tight"].hit_ids.tolist()]) >= 8)


def test_type_mismatch():
    with pytest.raises(
        ConfigError,
        match=r"type mismatch on key 'hits': ToyReader produces Hits, "
        r"but ZHistogramVertexer input 'tracks' expects Tracks",
    ):
        Sequencer([ToyReader(events=1), ZHistogramVertexer(tracks="hits")]).plan()


def test_cycle_is_reported_with_the_algorithms():
    algs = [
        ToyReader(events=1),
        Relabel(source="combined", relabelled="tracks"),
        Combine(name="counter", first="hits", second="tracks"),
    ]
    with pytest.raises(ConfigError, match=r"cycle: .*counter.*Relabel|cycle: .*Relabel.*counter"):
        Sequencer(algs).plan()


def test_duplicate_names_and_no_reader():
    with pytest.raises(ConfigError, match="two algorithms are named 'TruthTracker'"):
        Sequencer([ToyReader(), TruthTracker(), TruthTracker()]).plan()
    with pytest.raises(ConfigError, match="no reader"):
        Sequencer([TruthTracker()]).plan()


def test_unknown_option_and_wrong_type():
    with pytest.raises(ConfigError, match=r"unknown option 'bins'.*min_hits"):
        TruthTracker(bins=3)
    with pytest.raises(ConfigError, match=r"option 'min_hits' must be int"):
        TruthTracker(min_hits="many")


def test_order_follows_dependencies_not_insertion(tmp_path):
    plan = Sequencer(toy_sequence(tmp_path)).plan()
    assert [a.name for a in plan.ordered] == ["ToyReader", "TruthTracker", "ZHistogramVertexer", "SummaryWriter"]
    assert [a.name for a in plan.serial] == ["SummaryWriter"]


# -- event store --------------------------------------------------------------------------------------
def test_event_store_write_once_and_missing_key_message():
    store = EventStore()
    store.put("tracks_ckf", Tracks(hit_ids=[[1]]), producer="ActsCKF")
    with pytest.raises(DuplicateKeyError, match="already written by ActsCKF"):
        store.put("tracks_ckf", Tracks(hit_ids=[[2]]), producer="Other")
    with pytest.raises(MissingKeyError) as err:
        store.get("tracks", consumer="KDEBuilder")
    assert "KDEBuilder" in str(err.value) and "'tracks'" in str(err.value) and "'tracks_ckf'" in str(err.value)


# -- error policies --------------------------------------------------------------------------------------
def test_abort_policy_names_event_and_algorithm():
    seq = Sequencer([ToyReader(events=6), FailOn(entries=[3])])
    with pytest.raises(EventError, match=r"event 3 \(entry 3\): FailOn failed: RuntimeError: bad event 3"):
        seq.run(progress=False)


@pytest.mark.parametrize("jobs", [1, 2])
def test_skip_policy_records_and_continues(tmp_path, jobs):
    algs = [
        ToyReader(events=8),
        FailOn(entries=[2, 5]),
        SummaryWriter(path=str(tmp_path / "s.json"), collections=["hits", "checked"]),
    ]
    result = Sequencer(algs, error_policy="skip").run(jobs=jobs, progress=False)
    assert result.processed == 6
    assert [(f.entry, f.algorithm) for f in result.failures] == [(2, "FailOn"), (5, "FailOn")]
    assert "bad event 5" in result.failures[1].error
    rows = json.loads((tmp_path / "s.json").read_text())["events"]
    assert [r["event_id"] for r in rows] == [0, 1, 3, 4, 6, 7]


def test_failed_run_leaves_no_output(tmp_path):
    algs = [
        ToyReader(events=4),
        FailOn(entries=[3]),
        SummaryWriter(path=str(tmp_path / "s.json"), collections=["checked"]),
    ]
    with pytest.raises(EventError):
        Sequencer(algs).run(progress=False)
    assert list(tmp_path.iterdir()) == []


# -- -n / --skip / parallel ----------------------------------------------------------------------------
def test_n_and_skip_select_entries(tmp_path):
    result = Sequencer(toy_sequence(tmp_path)).run(n_events=4, skip=5, progress=False)
    rows = json.loads((tmp_path / "summary.json").read_text())["events"]
    assert [r["event_id"] for r in rows] == [5, 6, 7, 8]
    assert (result.start, result.stop) == (5, 9)


def test_parallel_output_identical_to_serial(tmp_path):
    outputs = {}
    for jobs in (1, 2):
        seq = Sequencer(
            [ToyReader(events=23), TruthTracker(), ZHistogramVertexer(), Collect(keys=["tracks", "vertices"])]
        )
        result = seq.run(jobs=jobs, chunk_size=3, progress=False)
        assert result.jobs == jobs and result.processed == 23
        outputs[jobs] = seq.algorithm("Collect").seen
    assert len(outputs[1]) == len(outputs[2]) == 23
    for a, b in zip(outputs[1], outputs[2]):
        assert a["tracks"].equals(b["tracks"]) and a["vertices"].equals(b["vertices"])


def test_output_type_checked_at_run_time():
    class Liar(Algorithm):
        outputs = ("vertices",)

        def execute(self, hits: Hits) -> Vertices:
            return hits  # wrong type

    with pytest.raises(EventError, match="Liar output 'vertices' should be Vertices, got Hits"):
        Sequencer([ToyReader(events=1), Liar()]).run(progress=False)


def test_event_info_is_provided_by_the_sequencer():
    seq = Sequencer([ToyReader(events=3), Collect(keys=["event"])])
    seq.run(skip=1, progress=False)
    infos = [e["event"] for e in seq.algorithm("Collect").seen]
    assert all(isinstance(i, EventInfo) for i in infos)
    assert [int(i.entry[0]) for i in infos] == [1, 2]
