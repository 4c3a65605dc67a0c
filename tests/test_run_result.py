"""The run result's typed fields, chunk results that keep who produced what, the one check of the
execution options, the executor protocol, and a sequencer split into short functions."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from recotrig.algorithms.toy import SummaryWriter, ToyReader, TruthTracker, ZHistogramVertexer
from recotrig.framework import ConfigError, RunResult, Sequencer
from recotrig.framework.executors import DaskExecutor, Executor, IterativeExecutor, ProcessExecutor
from recotrig.framework.store import EventStore
from recotrig.framework.worker import Worker
from recotrig.metrics.performance import Performance
from recotrig.sequences.cli import main

FRAMEWORK = Path(__file__).resolve().parents[1] / "framework"


def toy(out: Path, **performance) -> list:
    return [
        ToyReader(events=6),
        TruthTracker(min_hits=3),
        ZHistogramVertexer(),
        Performance(output=str(out), min_hits=3, **performance),
    ]


# -- typed fields ---------------------------------------------------------------------------------------------
def test_metrics_fill_typed_fields_not_string_keys(tmp_path):
    result = Sequencer(toy(tmp_path, tracks=["tracks"], vertices=["vertices"])).run(progress=False)
    assert not hasattr(result, "extra")
    labels = [row["algorithm"] for row in result.comparison]
    assert labels == ["TruthTracker [tracks]", "ZHistogramVertexer [vertices]", "ZHistogramVertexer [vertices] window"]
    assert all("ms_per_event" not in row for row in result.comparison)  # equal runs give equal tables
    assert set(result.comparison_ms_per_event) == set(labels)
    assert result.comparison_ms_per_event["TruthTracker [tracks]"] > 0
    assert len(result.reports) == 1 and "TruthTracker [tracks]" in result.reports[0]
    assert result.triggers == {}


def test_a_run_without_metrics_has_empty_summaries():
    result = Sequencer([ToyReader(events=2), TruthTracker()]).run(progress=False)
    assert result.reports == [] and result.comparison is None and result.comparison_ms_per_event == {}
    assert result.triggers == {}


def test_two_comparison_metrics_keep_both_tables(tmp_path):
    algs = [
        *toy(tmp_path / "a", tracks=["tracks"]),
        Performance(name="Vertices", vertices=["vertices"], tracks=[], output=str(tmp_path / "b")),
    ]
    result = Sequencer(algs).run(progress=False)
    assert [row["algorithm"] for row in result.comparison] == [
        "TruthTracker [tracks]",
        "ZHistogramVertexer [vertices]",
        "ZHistogramVertexer [vertices] window",
    ]
    assert len(result.reports) == 2


def test_trigger_figures_are_kept_by_metric_name():
    result = RunResult(start=0, stop=1, processed=1, failures=[], timing=[], wall_s=1.0)
    result.add_trigger("TriggerPerformance", {"n_background": 3})
    result.add_report("table")
    assert result.triggers == {"TriggerPerformance": {"n_background": 3}} and result.reports == ["table"]


def test_the_cli_writes_the_typed_fields(tmp_path, capsys):
    assert main(["run", "toy", "-n", "4", "-o", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "run.json").read_text())
    assert list(report) == ["record", "processed", "failures", "filters", "bad_files", "comparison"]
    assert [row["algorithm"] for row in report["comparison"]][:1] == ["TruthTracker [tracks]"]
    assert all("ms_per_event" not in row for row in report["comparison"])
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["ms_per_event"]["TruthTracker [tracks]"] > 0
    assert "TruthTracker [tracks]" in printed  # the comparison report follows the timing table


# -- chunk results keep their producer -------------------------------------------------------------------
def test_a_worker_ships_each_key_with_its_producer():
    plan = Sequencer([ToyReader(events=4), TruthTracker()]).plan()
    worker = Worker(plan.parallel, plan.gates, ("event", "tracks"), "abort", len(plan.ordered))
    executor = ProcessExecutor(2)
    executor.start(worker)
    try:
        chunks = list(executor.map([(0, 2), (2, 4)]))
    finally:
        executor.close()
    events = [ev for chunk in chunks for ev in chunk.events]
    assert [ev.entry for ev in events] == [0, 1, 2, 3]
    assert {k: s.producer for k, s in events[0].data.items()} == {"event": "Sequencer", "tracks": "TruthTracker"}
    store = events[0].state().store
    assert store.producer("tracks") == "TruthTracker" and store.producer("event") == "Sequencer"


def test_the_main_process_stores_shipped_keys_under_their_producer(tmp_path, monkeypatch):
    puts: list[tuple[str, str]] = []
    original = EventStore.put

    def put(self, key, value, *, producer):
        puts.append((key, producer))
        original(self, key, value, producer=producer)

    monkeypatch.setattr(EventStore, "put", put)  # the worker processes' puts stay in the workers
    seq = Sequencer(
        [ToyReader(events=4), TruthTracker(), SummaryWriter(path=str(tmp_path / "s.json"), collections=["tracks"])]
    )
    assert seq.run(jobs=2, chunk_size=2, progress=False).processed == 4
    assert sorted(set(puts)) == [("event", "Sequencer"), ("tracks", "TruthTracker")]
    assert puts.count(("tracks", "TruthTracker")) == 4


# -- one check of -j, --workers, --retries, --chunk-size ---------------------------------------------------
@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: Sequencer([ToyReader(events=2)]).run(jobs=0, progress=False),
            "jobs must be an integer from 1 to 64, got 0",
        ),
        (
            lambda: Sequencer([ToyReader(events=2)]).run(chunk_size=0, progress=False),
            "chunk_size must be an integer of at least 1, got 0",
        ),
        (
            lambda: Sequencer([ToyReader(events=2)]).run(retries=-1, progress=False),
            "retries must be an integer from 0 to 100, got -1",
        ),
        (lambda: IterativeExecutor(retries=101), "retries must be an integer from 0 to 100, got 101"),
        (lambda: ProcessExecutor(0), "workers must be an integer from 1 to 64, got 0"),
        (lambda: DaskExecutor(True), "workers must be an integer from 1 to 64, got True"),
    ],
)
def test_the_python_api_names_the_keyword(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value) == message


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("-j", "0", "-j must be from 1 to 64, got 0"),
        ("--workers", "65", "--workers must be from 1 to 64, got 65"),
        ("--retries", "-1", "--retries must be from 0 to 100, got -1"),
        ("--chunk-size", "0", "--chunk-size must be at least 1, got 0"),
    ],
)
def test_the_command_line_names_the_flag(tmp_path, capsys, flag, value, message):
    out = tmp_path / "out"
    assert main(["run", "toy", flag, value, "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"recotrig run: error: {message}" and not out.exists()


# -- the executor protocol, and short functions -------------------------------------------------------
def test_every_executor_is_an_executor():
    assert all(isinstance(e, Executor) for e in (IterativeExecutor(), ProcessExecutor(1), DaskExecutor(1)))


def test_the_sequencer_is_made_of_short_functions():
    long = []
    for name in ("sequencer.py", "plan.py", "runner.py", "result.py", "limits.py"):
        tree = ast.parse((FRAMEWORK / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append(f"{name}:{node.name} ({length} lines)")
    assert long == []
