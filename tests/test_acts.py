"""ACTS baselines inside recotrig's event loop, on simulated mu = 20 events (Pythia 8 minimum bias,
Fatras, smearing): CKF efficiency, AMVF vertex finding, Kalman fit of truth proto-tracks; plus the
bridge's error messages and conventions."""

from __future__ import annotations

import functools
import pickle

import awkward as ak
import numpy as np
import pytest

from recotrig.algorithms.acts import (
    ActsAMVF,
    ActsCKF,
    ActsTrackFit,
    bridge,
)
from recotrig.detector import DetectorSpec
from recotrig.edm import Hits, HitTruth, Particles, Tracks, TruthVertices, Vertices
from recotrig.framework import Sequencer
from recotrig.framework.algorithm import Algorithm, Option, Reader, Writer
from recotrig.metrics.tracking import TrackingMetrics
from recotrig.metrics.vertexing import VertexMetrics
from recotrig.sim.simulate import Simulator

N_EVENTS = 3
MIN_PT, MAX_ETA, MIN_HITS = 1.0, 2.5, 7


@functools.cache
def simulate(mu: float, seed: int, entry: int) -> dict:
    return Simulator(mu=mu, seed=seed).simulate(entry)


class SimReader(Reader):
    """Simulated events (the test's own store)."""

    outputs = ("hits", "particles", "truth", "truth_vertices")
    mu = Option(20.0, "pile-up")
    seed = Option(1, "run seed")
    events = Option(N_EVENTS, "events")

    def n_events(self) -> int:
        return self.events

    def read(self, entry: int) -> tuple[Hits, Particles, HitTruth, TruthVertices]:
        event = simulate(self.mu, self.seed, entry)
        return event["hits"], event["particles"], event["truth"], event["vertices"]


def prompt_particles(particles: Particles, truth_vertices: TruthVertices) -> np.ndarray:
    """Mask: charged particles produced at their interaction point with pT > MIN_PT, |eta| < MAX_ETA."""
    rows = np.searchsorted(truth_vertices.vertex_id, particles.vertex_id)
    rows = np.clip(rows, 0, len(truth_vertices) - 1)
    at_vertex = (
        np.hypot(
            np.hypot(particles.vx - truth_vertices.x[rows], particles.vy - truth_vertices.y[rows]),
            particles.vz - truth_vertices.z[rows],
        )
        < 1e-3
    )
    pt = np.hypot(particles.px, particles.py)
    eta = np.arcsinh(particles.pz / np.maximum(pt, 1e-12))
    return at_vertex & (particles.q != 0) & (pt > MIN_PT) & (np.abs(eta) < MAX_ETA)


def efficiency_particles(particles: Particles) -> np.ndarray:
    """Mask: |eta| < MAX_ETA and produced at a radius below 24 mm (pT and hits are cut by the metric)."""
    pt = np.hypot(particles.px, particles.py)
    eta = np.arcsinh(particles.pz / np.maximum(pt, 1e-12))
    return (np.abs(eta) < MAX_ETA) & (np.hypot(particles.vx, particles.vy) < 24.0)


class TruthProtoTracks(Algorithm):
    """What an ideal ML track finder gives: the hits of each prompt particle (>= MIN_HITS hits)."""

    outputs = ("proto_tracks",)

    def execute(self, hits: Hits, truth: HitTruth, particles: Particles, truth_vertices: TruthVertices) -> Tracks:
        chosen = np.asarray(particles.particle_id)[prompt_particles(particles, truth_vertices)]
        pid = np.asarray(truth.particle_id)
        keep = np.isin(pid, chosen)
        order = np.argsort(pid[keep], kind="stable")
        _, counts = np.unique(pid[keep][order], return_counts=True)
        lists = ak.unflatten(np.asarray(truth.hit_id)[keep][order], counts)
        return Tracks(hit_ids=lists[counts >= MIN_HITS])


class Collect(Writer):
    """Keeps every event's collections (runs in the main process)."""

    def initialize(self) -> None:
        self.events: list[dict] = []

    def execute(
        self,
        hits: Hits,
        particles: Particles,
        truth: HitTruth,
        truth_vertices: TruthVertices,
        tracks: Tracks,
        vertices_gauss: Vertices,
        vertices_grid: Vertices,
        proto_tracks: Tracks,
        fitted: Tracks,
    ) -> None:
        self.events.append({
            "hits": hits, "particles": particles, "truth": truth, "truth_vertices": truth_vertices, "tracks": tracks,
            "vertices_gauss": vertices_gauss, "vertices_grid": vertices_grid, "proto_tracks": proto_tracks,
            "fitted": fitted,
        })  # fmt: skip


@pytest.fixture(scope="module")
def run():
    collect = Collect()
    algorithms = [
        SimReader(),
        ActsCKF(name="ckf"),
        ActsAMVF(name="amvf_gauss", vertices="vertices_gauss"),
        ActsAMVF(name="amvf_grid", seeder="adaptive_grid", vertices="vertices_grid"),
        TruthProtoTracks(),
        ActsTrackFit(name="fit", tracks="proto_tracks"),
        collect,
    ]
    result = Sequencer(algorithms).run(progress=False)
    assert result.processed == N_EVENTS and not result.failures
    return collect.events


@pytest.mark.slow
def test_ckf_efficiency(run):
    """Particles with pT > 1 GeV, |eta| < 2.5, >= 7 hits, made inside the beam pipe (production
    radius < 24 mm, ACTS's physics-monitoring particle selection: Fatras secondaries from
    material interactions cannot be seeded by pixel triplets pointing at the beam line)."""
    metrics = TrackingMetrics(min_pt=MIN_PT, min_hits=MIN_HITS)
    for event in run:
        metrics.add_event(
            event["tracks"], event["truth"], event["particles"].select(efficiency_particles(event["particles"]))
        )
    result = metrics.result()
    assert result["n_reconstructable"] > 100
    assert result["efficiency"] > 0.95, result
    assert result["fake_rate"] < 0.05, result


@pytest.mark.slow
def test_ckf_tracks_carry_perigee_parameters(run):
    tracks = run[0]["tracks"]
    assert len(tracks) > 50 and tracks.fitted
    assert np.all(ak.num(tracks.hit_ids) >= 7)
    assert np.all(np.isfinite(tracks.cov[:, :5, :5]))
    assert np.all(np.diagonal(tracks.cov, axis1=1, axis2=2)[:, :5] > 0)
    assert np.allclose(tracks.cov, np.transpose(tracks.cov, (0, 2, 1)), rtol=1e-6, atol=1e-12)
    # hits are ordered along the track: the radius grows
    hits = run[0]["hits"]
    r = np.hypot(hits.x, hits.y)
    rows = np.searchsorted(hits.hit_id, ak.to_numpy(ak.flatten(tracks.hit_ids)))
    r_tracks = ak.unflatten(r[rows], ak.num(tracks.hit_ids))
    first, last = ak.to_numpy(r_tracks[:, 0]), ak.to_numpy(r_tracks[:, -1])
    assert np.mean(first < last) > 0.95


@pytest.mark.slow
@pytest.mark.parametrize("key", ["vertices_gauss", "vertices_grid"])
def test_amvf_finds_reconstructable_vertices(run, key):
    metrics = VertexMetrics()
    for event in run:
        vertices = event[key]
        assert len(vertices) > 0 and "cov" not in vertices
        flat = ak.to_numpy(ak.flatten(vertices.track_index))
        assert len(flat) == 0 or (flat.min() >= 0 and flat.max() < len(event["tracks"]))
        assert np.all(ak.to_numpy(ak.flatten(vertices.track_weight)) >= 0.1)
        metrics.add_event(vertices, event["truth_vertices"], tracks=event["tracks"], truth=event["truth"],
                          particles=event["particles"])  # fmt: skip
    result = metrics.result()
    assert result["matching"] == "tracks"
    assert result["n_reconstructable"] >= 30
    assert result["efficiency"] > 0.85, result
    assert result["window_efficiency"] > 0.85, result


@pytest.mark.slow
def test_fit_recovers_truth_z0(run):
    """Truth proto-tracks fitted with the Kalman fitter: z0 agrees with the particle's z0 within
    the fitted error. For a Gaussian pull 99.7 % lie within 3 sigma; we ask for 95 % (material
    tails, the beam-spot offset approximated to first order) and a core width within 20 %."""
    pulls, fitted, total = [], 0, 0
    for event in run:
        proto, out, p = event["proto_tracks"], event["fitted"], event["particles"]
        assert len(out) == len(proto)
        assert ak.all(ak.num(out.hit_ids) == ak.num(proto.hit_ids))
        ok = np.isfinite(out.z0)
        fitted, total = fitted + ok.sum(), total + len(out)
        truth = event["truth"]
        first_hit = ak.to_numpy(proto.hit_ids[:, 0])
        pid = truth.particle_id[np.searchsorted(truth.hit_id, first_hit)]
        row = np.searchsorted(p.particle_id, pid)
        pt = np.hypot(p.px[row], p.py[row])
        # perigee z0 of a particle made at (vx, vy, vz), to first order in the transverse offset
        z0_true = p.vz[row] - (p.vx[row] * p.px[row] + p.vy[row] * p.py[row]) / pt * p.pz[row] / pt
        pulls.append(((out.z0 - z0_true) / np.sqrt(out.cov[:, 1, 1]))[ok])
    pulls = np.concatenate(pulls)
    assert total > 100 and fitted / total > 0.95
    assert np.mean(np.abs(pulls) < 3) > 0.95
    core = 1.4826 * np.median(np.abs(pulls - np.median(pulls)))
    assert 0.8 < core < 1.2, core


@pytest.mark.slow
def test_fit_keeps_unfittable_rows(run):
    event = run[0]
    proto = event["proto_tracks"]
    two_hits = ak.Array([proto.hit_ids[0].tolist()[:2]])
    tracks = Tracks(hit_ids=ak.concatenate([proto.hit_ids[:3], two_hits]))
    fit = ActsTrackFit()
    fit.initialize()
    out = fit.execute(tracks=tracks, hits=event["hits"])
    assert len(out) == 4 and np.isfinite(out.z0[:3]).all() and np.isnan(out.z0[3]) and out.ndf[3] == 0
    fit.configure(drop_failed=True)
    assert len(fit.execute(tracks=tracks, hits=event["hits"])) == 3
    # AMVF ignores rows it cannot use
    amvf = ActsAMVF(finder="iterative")
    amvf.initialize()
    vertices = amvf.execute(tracks=out)
    assert 3 not in ak.to_numpy(ak.flatten(vertices.track_index))
    amvf.finalize()


@pytest.mark.slow
def test_no_fpe_trap_after_acts(run):
    """ACTS ran in this process (fixture) and left no floating-point exception trap enabled: the
    C library's enabled-trap mask is empty, so a division by zero anywhere gives inf, not SIGFPE."""
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    assert libm.fegetexcept() == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isinf(np.float64(1.0) / np.zeros(1))[0]


def test_hits_without_acts_columns_are_refused():
    hits = Hits(hit_id=[1, 2], x=[1.0, 2.0], y=[0.0, 0.0], z=[0.0, 1.0])
    ckf = ActsCKF(name="ckf", hits="my_hits")
    ckf.initialize()
    with pytest.raises(ValueError, match=r"Hits 'my_hits' lacks column\(s\) \['geometry_id'.*ACTS measurement columns"):
        ckf.execute(hits=hits)


def test_unknown_geometry_id_is_refused():
    hits = Hits(hit_id=[1], x=[1.0], y=[0.0], z=[0.0], geometry_id=[12345], loc0=[0.0], loc1=[0.0],
                var_loc0=[1e-4], var_loc1=[1e-4])  # fmt: skip
    with pytest.raises(ValueError, match="not sensitive surfaces"):
        bridge.hits_to_measurements(hits, bridge.acts_setup())


class _HitLists(Algorithm):
    """Tracks with hit lists only, as a hit-to-track finder gives them before a fit."""

    outputs = ("tracks",)

    def execute(self, hits: Hits) -> Tracks:
        return Tracks(hit_ids=[[1, 2, 3]])


def test_amvf_needs_fitted_tracks_before_any_event():
    from recotrig.framework import ConfigError
    from recotrig.io.hit_reader import HitReader
    from recotrig.sequences.samples import SAMPLE_MU20

    seq = Sequencer([HitReader(input=str(SAMPLE_MU20)), _HitLists(), ActsAMVF()])
    with pytest.raises(ConfigError, match="produces Tracks, but ActsAMVF input 'tracks' expects FittedTracks"):
        seq.plan()


def test_algorithms_travel_as_configuration_only():
    """What goes to a worker is the configuration: an initialised algorithm pickles without its
    ACTS state, and the copy builds its own in initialize (an ACTS sequence with -j 2 runs in
    tests/test_sequences.py)."""
    for alg in (
        ActsCKF(min_measurements=8, field_T=1.5),
        ActsAMVF(seeder="adaptive_grid"),
        ActsTrackFit(drop_failed=True, log_level="ERROR"),
    ):
        alg.initialize()
        copy = pickle.loads(pickle.dumps(alg))
        assert copy.options() == alg.options() and copy.name == alg.name
        assert hasattr(alg, "setup") and not hasattr(copy, "setup")
        copy.initialize()
        # the copy's own set-up is built from the options it carried: same detector, field, log level
        assert copy.setup.detector.spec == alg.setup.detector.spec == DetectorSpec(field_T=alg.field_T)
        assert copy.setup.bfield_z == alg.setup.bfield_z and copy.setup.sensitive == alg.setup.sensitive
        assert copy.level == alg.level == bridge.log_level(alg.log_level)


def test_track_parameter_csv_layout(tmp_path):
    params = np.array([[0.01, -3.0, 0.5, 1.2, 0.2]])
    cov = np.diag([1e-4, 4e-4, 1e-6, 1e-6, 1e-6])[None].copy()
    cov[0, 0, 1] = cov[0, 1, 0] = 5e-5
    path = bridge.write_track_parameters_csv(tmp_path, "trk", 7, params, cov)
    assert path.name == "event000000007-trk.csv"
    header, row = path.read_text().splitlines()
    columns = dict(zip(header.split(","), map(float, row.split(","))))
    assert len(columns) == 31 and columns["z0"] == -3.0 and columns["cov_d0z0"] == columns["cov_z0d0"] == 5e-5


def test_run_event_round_trip():
    import acts.examples

    event = bridge.run_event([], {"prototracks": bridge.proto_tracks([[0, 1, 2], [5]])}, event_number=3)
    stored = event.get("prototracks", acts.examples.ProtoTrackContainer)
    assert [list(p) for p in stored] == [[0, 1, 2], [5]]
    assert event.context.eventNumber == 3
    with pytest.raises(KeyError, match="has no 'seeds'"):
        event.get("seeds", acts.examples.ProtoTrackContainer)


def test_empty_event():
    hits = Hits(hit_id=np.zeros(0, np.int64), x=[], y=[], z=[], geometry_id=np.zeros(0, np.uint64), loc0=[], loc1=[],
                var_loc0=[], var_loc1=[])  # fmt: skip
    ckf, amvf, fit = ActsCKF(), ActsAMVF(), ActsTrackFit()
    for alg in (ckf, amvf, fit):
        alg.initialize()
    tracks = ckf.execute(hits=hits)
    assert len(tracks) == 0 and tracks.cov.shape == (0, 6, 6)
    assert len(amvf.execute(tracks=tracks)) == 0
    fitted = fit.execute(tracks=Tracks(hit_ids=[]), hits=hits)
    assert len(fitted) == 0 and fitted.names == tracks.names
    amvf.finalize()
