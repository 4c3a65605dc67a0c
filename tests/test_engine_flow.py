"""The engine's second round: filters, the chunk path, metrics merged from the workers, the
process context, readers that declare what they hold, and the defects fixed with it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recotrig.algorithms.toy import SummaryWriter, ToyReader, TruthTracker, ZHistogramVertexer
from recotrig.edm import Hits, HitTruth, Tracks, TriggerDecision
from recotrig.framework import (
    Algorithm,
    ConfigError,
    EventError,
    EventInfo,
    Filter,
    Metric,
    Reader,
    Sequencer,
)
from recotrig.framework.testing import FailOn
from recotrig.io.hit_reader import HitReader
from recotrig.io.store import write_store
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance


# -- helpers (module level: they travel to worker processes) ----------------------------------------------
class EvenEvents(Filter):
    """Passes even event ids; its decision is also an output."""

    outputs = ("decision",)

    def execute(self, event: EventInfo) -> tuple[bool, TriggerDecision]:
        passed = int(event.event_id[0]) % 2 == 0
        return passed, TriggerDecision(score=[float(event.event_id[0])], passed=[passed])


class HitCount(Algorithm):
    """Counts hits; offers a chunk path whose results equal the per-event ones."""

    outputs = ("count",)
    calls: list[int] = []

    def execute(self, hits: Hits) -> Tracks:
        return Tracks(hit_ids=[[len(hits)]])

    def execute_chunk(self, hits: list[Hits]) -> list[Tracks]:
        type(self).calls.append(len(hits))
        sizes = np.asarray([len(h) for h in hits])
        return [Tracks(hit_ids=[[int(n)]]) for n in sizes]


class Counter:
    """A mergeable accumulator: event ids seen, in order."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def merge(self, other: Counter) -> Counter:
        self.ids.extend(other.ids)
        return self


class SeenEvents(Metric):
    def accumulator(self) -> Counter:
        return Counter()

    def execute(self, event: EventInfo) -> None:
        self.acc.ids.append(int(event.event_id[0]))

    def summarise(self, acc: Counter, result, producers) -> None:
        self.seen = acc.ids
        self.where = os.getpid()


class Threads(Algorithm):
    outputs = ("info",)

    def execute(self, event: EventInfo) -> EventInfo:
        c = self.context
        return EventInfo(entry=[c.worker_index * 1000 + c.threads], event_id=[c.workers])


# -- filters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [1, 2])
def test_filter_gates_what_is_listed_after_it(tmp_path, jobs):
    seq = Sequencer(
        [
            ToyReader(events=10),
            SummaryWriter(name="all_events", path=str(tmp_path / "all.json"), collections=["hits"]),
            EvenEvents(),
            TruthTracker(),
            SummaryWriter(name="passing", path=str(tmp_path / "passing.json"), collections=["tracks", "decision"]),
        ]
    )
    result = seq.run(jobs=jobs, chunk_size=3, progress=False)
    assert result.filters == {"EvenEvents": {"seen": 10, "passed": 5}}
    assert "filter EvenEvents: 5 of 10 events passed (50.0%)" in result.timing_table()
    assert [r["event_id"] for r in json.loads((tmp_path / "all.json").read_text())["events"]] == list(range(10))
    assert [r["event_id"] for r in json.loads((tmp_path / "passing.json").read_text())["events"]] == [0, 2, 4, 6, 8]
    calls = {row["algorithm"]: row["calls"] for row in result.timing}
    assert calls == {"ToyReader": 10, "all_events": 10, "EvenEvents": 10, "TruthTracker": 5, "passing": 5}
    assert result.processed == 10 and not result.failures
    assert np.isnan(result.per_event["TruthTracker"]).sum() == 5  # not run on rejected events


def test_filter_must_return_bool_first():
    with pytest.raises(TypeError, match="must return bool first"):

        class Bad(Filter):
            outputs = ("x",)

            def execute(self, event: EventInfo) -> EventInfo: ...


def test_writer_behind_a_filter_keeps_passing_events_only(tmp_path):
    Sequencer(
        [
            ToyReader(events=6),
            EvenEvents(),
            TruthTracker(),
            StoreWriter(path=str(tmp_path / "pass.root"), collections=["tracks", "decision"]),
        ]
    ).run(progress=False)
    from recotrig.io.store import open_store

    store = open_store(tmp_path / "pass.root")
    assert store.event_ids.tolist() == [0, 2, 4]
    assert all(bool(e["decision"].passed[0]) for e in store.read())


# -- chunk path ----------------------------------------------------------------------------------
def test_chunk_path_is_used_and_equals_per_event(tmp_path):
    HitCount.calls = []
    seq = Sequencer(
        [ToyReader(events=7), HitCount(), SummaryWriter(path=str(tmp_path / "s.json"), collections=["hits", "count"])]
    )
    seq.run(chunk_size=4, progress=False)
    assert HitCount.calls == [4, 3]
    rows = json.loads((tmp_path / "s.json").read_text())["events"]
    reader = ToyReader(events=7)
    assert [r["hits"] for r in rows] == [len(reader.read(e)[0]) for e in range(7)]


class HitCountFailing(HitCount):
    def execute(self, hits: Hits) -> Tracks:
        if len(hits) % 2:
            raise ValueError("odd hit count")
        return super().execute(hits)

    def execute_chunk(self, hits: list[Hits]) -> list[Tracks]:
        if any(len(h) % 2 for h in hits):
            raise ValueError("odd hit count in the chunk")
        return super().execute_chunk(hits)


def test_a_failing_chunk_is_redone_event_by_event_so_the_failure_names_its_event():
    reader = ToyReader(events=8)
    odd = [e for e in range(8) if len(reader.read(e)[0]) % 2]
    assert odd and len(odd) < 8
    result = Sequencer([ToyReader(events=8), HitCountFailing()], error_policy="skip").run(chunk_size=8, progress=False)
    assert [f.entry for f in result.failures] == odd and result.processed == 8 - len(odd)
    assert all("odd hit count" in f.error for f in result.failures)


# -- metrics in the workers ------------------------------------------------------------------------
def test_metric_accumulators_merge_in_chunk_order():
    results = {}
    for jobs in (1, 2):
        seq = Sequencer([ToyReader(events=13), SeenEvents()])
        seq.run(jobs=jobs, chunk_size=2, progress=False)
        results[jobs] = seq.algorithm("SeenEvents")
    assert results[1].seen == results[2].seen == list(range(13))
    assert results[2].where == os.getpid()  # summarised in the main process


def test_performance_runs_in_the_workers_and_equals_serial(tmp_path):
    tables = {}
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        seq = Sequencer(
            [
                ToyReader(events=12),
                TruthTracker(min_hits=3),
                ZHistogramVertexer(),
                Performance(tracks=["tracks"], vertices=["vertices"], output=str(out), min_hits=3),
            ]
        )
        plan = seq.plan()
        assert [a.name for a in plan.serial] == []  # nothing runs in the main process but the merge
        assert plan.ship_keys == ("event",)  # hits, truth and particles stay in the workers
        result = seq.run(jobs=jobs, chunk_size=jobs + 1, progress=False)
        tables[jobs] = result.comparison
    assert tables[1] == tables[2]
    for name in ("comparison.json", "comparison.root", "performance.json"):
        assert (tmp_path / "j1" / name).read_bytes() == (tmp_path / "j2" / name).read_bytes()


# -- process context ------------------------------------------------------------------------------
def test_each_process_gets_a_context_with_a_thread_budget():
    class Keep(Algorithm):
        serial = True

        def initialize(self):
            self.seen = []

        def execute(self, info: EventInfo) -> None:
            self.seen.append((int(info.entry[0]), int(info.event_id[0])))

    seq = Sequencer([ToyReader(events=8), Threads(), Keep()])
    seq.run(jobs=2, chunk_size=1, progress=False)
    seen = seq.algorithm("Keep").seen
    cores = len(os.sched_getaffinity(0))
    budget = max(1, cores // 2)
    assert {workers for _, workers in seen} == {2}
    assert {code % 1000 for code, _ in seen} == {budget}  # threads x workers <= cores
    assert {code // 1000 for code, _ in seen} <= {0, 1}


# -- readers declare what they hold ---------------------------------------------------------------
def test_a_consumer_of_absent_truth_fails_before_any_event(tmp_path):
    hits_only = write_store(tmp_path / "hits.root", [{"hits": ToyReader().read(0)[0]}])
    seq = Sequencer([HitReader(input=str(hits_only)), Performance(tracks=[])])
    with pytest.raises(ConfigError, match=r"Performance input 'truth'.*store .*hits.root does not hold"):
        seq.plan()


def test_none_for_a_declared_output_is_an_error():
    class Forgetful(Algorithm):
        outputs = ("tracks",)

        def execute(self, hits: Hits) -> Tracks:
            return None

    with pytest.raises(EventError, match="Forgetful returned None for its declared output 'tracks'"):
        Sequencer([ToyReader(events=1), Forgetful()]).run(progress=False)


class ShiftedReader(Reader):
    outputs = ("other",)

    def n_events(self) -> int:
        return 5

    def event_id(self, entry: int) -> int:
        return entry + (1 if entry >= 3 else 0)

    def read(self, entry: int) -> EventInfo:
        return EventInfo(entry=[entry], event_id=[self.event_id(entry)])


def test_a_second_reader_must_agree_on_event_ids():
    with pytest.raises(
        EventError,
        match=r"readers disagree at entry 3: ToyReader reads event 3, "
        r"ShiftedReader reads event 4",
    ):
        Sequencer([ToyReader(events=5), ShiftedReader()], error_policy="skip").run(progress=False)


# -- defects ----------------------------------------------------------------------------------------
def test_mutable_option_defaults_are_not_shared():
    a, b = FailOn(), FailOn()
    a.entries.append(7)
    assert b.entries == [0] and FailOn().entries == [0]


def test_list_options_with_an_empty_default_parse_to_their_element_type():
    spec = HitReader.option_specs()["volumes"]
    assert spec.parse("7,8, 9") == [7, 8, 9]
    with pytest.raises(ValueError, match="expected int, got 'abc'"):
        spec.parse("7,abc")
    with pytest.raises(ConfigError, match=r"option 'volumes' must hold int values"):
        HitReader(volumes=[7, "8"])
    with pytest.raises(ConfigError, match=r"option 'min_pt' must be >= 0.0"):
        HitReader(min_pt=-1.0)
    with pytest.raises(ConfigError, match=r"option 'min_pt' must be a finite number"):
        HitReader(min_pt=float("nan"))


class RaisingSummary(Algorithm):
    serial = True

    def execute(self, event: EventInfo) -> None:
        return None

    def end_of_run(self, result, producers) -> None:
        raise RuntimeError("summary failed")


def test_a_raising_end_of_run_leaves_no_output_behind(tmp_path):
    seq = Sequencer(
        [
            ToyReader(events=3),
            TruthTracker(),
            StoreWriter(path=str(tmp_path / "out.root"), collections=["tracks"]),
            RaisingSummary(),
        ]
    )
    with pytest.raises(RuntimeError, match="summary failed"):
        seq.run(progress=False)
    assert list(tmp_path.iterdir()) == []


def test_abort_with_workers_leaves_no_output(tmp_path):
    seq = Sequencer(
        [
            ToyReader(events=12),
            FailOn(entries=[9]),
            TruthTracker(),
            StoreWriter(path=str(tmp_path / "out.root"), collections=["tracks"]),
        ]
    )
    with pytest.raises(EventError, match=r"event 9 \(entry 9\): FailOn failed"):
        seq.run(jobs=2, chunk_size=2, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("jobs", [0, -2, 1000, True])
def test_jobs_out_of_range_is_refused(jobs):
    with pytest.raises(ConfigError, match="jobs must be an integer from 1 to"):
        Sequencer([ToyReader(events=2)]).run(jobs=jobs, progress=False)


def test_never_more_workers_than_events():
    result = Sequencer([ToyReader(events=2), TruthTracker()]).run(jobs=8, progress=False)
    assert result.jobs == 2 and result.processed == 2


def test_truth_rows_for_unknown_hits_are_named(tmp_path):
    hits, particles, truth, vertices = ToyReader().read(0)
    short = truth.select(np.arange(len(truth) - 2))
    path = write_store(
        tmp_path / "short.root", [{"hits": hits, "particles": particles, "truth": short, "vertices": vertices}]
    )
    seq = Sequencer([HitReader(input=str(path), drop_noise=True)])
    first = len(truth) - 2  # the first hit the short table leaves without a truth row
    missing = int(hits["hit_id"][first])
    with pytest.raises(EventError) as raised:
        seq.run(progress=False)
    named = f"file {path}, event 0, tree 'hits', column 'hit_id', row {first}"
    told = f"the truth table has {len(short)} rows for {len(hits)} hits: hit_id {missing} has no truth row"
    assert str(raised.value).rstrip().endswith(f"{named}: {told}")
    assert isinstance(short, HitTruth) and len(short) == len(hits) - 2


class ChildrenAtInitialize(Algorithm):
    """Serial: records how many worker processes exist when it initialises."""

    serial = True

    def initialize(self) -> None:
        import multiprocessing

        type(self).children = len(multiprocessing.active_children())

    def execute(self, event: EventInfo) -> None:
        return None


def test_serial_algorithms_initialise_after_the_workers_are_forked():
    ChildrenAtInitialize.children = -1
    Sequencer([ToyReader(events=6), TruthTracker(), ChildrenAtInitialize()]).run(jobs=2, chunk_size=1, progress=False)
    assert ChildrenAtInitialize.children == 2  # so no thread it starts can be inherited by a fork


def test_outputs_annotated_any_pass_through():
    from recotrig.framework.testing import CountingReader, Pass, PassChunk

    seq = Sequencer([CountingReader(events=5), Pass(inp="event", out="a"), PassChunk(name="b", inp="a", out="b")])
    result = seq.run(chunk_size=2, progress=False)
    assert result.processed == 5 and not result.failures
