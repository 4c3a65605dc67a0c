"""Physics sanity and determinism of the simulation chain (Pythia 8 -> ACTS Fatras -> smearing).

Runs a handful of low pile-up events (mu = 10): a few seconds, plus the one-off Pythia
minimum-bias initialisation (cached on disk after the first run).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from recotrig.edm import Hits, HitTruth, Particles, TruthVertices
from recotrig.sim.fatras import DigiResolution, decode_particle_id, encode_particle_id
from recotrig.sim.pileup import BeamSpot, PileupGenerator
from recotrig.sim.simulate import Simulator

pytestmark = pytest.mark.slow

MU = 10
SEED = 1234


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(mu=MU, seed=SEED, noise=True)


@pytest.fixture(scope="module")
def events(simulator: Simulator) -> list[dict]:
    """Events 0..3 computed in order in this process."""
    return [simulator.simulate(n) for n in range(4)]


def _eta(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
    return np.arcsinh(pz / np.hypot(px, py))


# -- structure ------------------------------------------------------------------------------------
def test_containers_and_ids(events: list[dict]) -> None:
    for event in events:
        hits, particles, truth, vertices = event["hits"], event["particles"], event["truth"], event["vertices"]
        assert isinstance(hits, Hits) and isinstance(particles, Particles)
        assert isinstance(truth, HitTruth) and isinstance(vertices, TruthVertices)
        acts_columns = ("geometry_id", "loc0", "loc1", "var_loc0", "var_loc1")
        for column in ("t", "volume_id", "layer_id", "module_id", *acts_columns):
            assert column in hits
        for column in ("vt", "nhits", "pdg", "vertex_id"):
            assert column in particles
        assert len(hits) > 1000
        np.testing.assert_array_equal(hits.hit_id, np.arange(1, len(hits) + 1))
        np.testing.assert_array_equal(truth.hit_id, hits.hit_id)
        assert particles.particle_id.dtype == np.int64 and (particles.particle_id > 0).all()
        assert len(np.unique(particles.particle_id)) == len(particles)
        assert set(np.unique(hits.volume_id)) <= {7, 8, 9, 12, 13, 14, 16, 17, 18}
        np.testing.assert_array_equal(vertices.vertex_id, np.arange(1, len(vertices) + 1))


def test_every_hit_particle_exists(events: list[dict]) -> None:
    for event in events:
        hit_particles = event["truth"].particle_id
        known = set(event["particles"].particle_id.tolist()) | {0}
        assert set(np.unique(hit_particles).tolist()) <= known
        real = hit_particles[hit_particles != 0]
        counts = dict(zip(*np.unique(real, return_counts=True)))
        nhits = dict(zip(event["particles"].particle_id.tolist(), event["particles"].nhits.tolist()))
        assert all(nhits[int(p)] == c for p, c in counts.items())
        assert sum(nhits.values()) == len(real)


def test_every_particle_vertex_exists(events: list[dict]) -> None:
    for event in events:
        particles, vertices = event["particles"], event["vertices"]
        assert set(np.unique(particles.vertex_id).tolist()) <= set(vertices.vertex_id.tolist())
        np.testing.assert_array_equal(decode_particle_id(particles.particle_id)["vertex_primary"], particles.vertex_id)


def test_noise_hits(events: list[dict], simulator: Simulator) -> None:
    for event in events:
        noise = event["truth"].particle_id == 0
        n_real = int((~noise).sum())
        # Poisson(0.05 * n_real): 5 standard deviations
        expected = simulator.noise_fraction * n_real
        assert abs(noise.sum() - expected) < 5 * np.sqrt(expected)


def test_measurements_close_to_truth(events: list[dict]) -> None:
    """Smeared positions scatter around the true ones with the configured resolution."""
    resolution = DigiResolution()
    hits, truth = events[0]["hits"], events[0]["truth"]
    real = truth.particle_id != 0
    pixel = real & np.isin(hits.volume_id, [7, 8, 9])
    distance = np.sqrt((hits.x - truth.tx) ** 2 + (hits.y - truth.ty) ** 2 + (hits.z - truth.tz) ** 2)[pixel]
    # 2D Gaussian (15 um x 50 um): the RMS distance is sqrt(s0^2 + s1^2) = 52 um; allow 20%
    expected = np.hypot(*resolution.pixel)
    assert np.sqrt(np.mean(distance**2)) == pytest.approx(expected, rel=0.2)
    assert np.allclose(hits.var_loc0[pixel], resolution.pixel[0] ** 2)


# -- physics --------------------------------------------------------------------------------------
def test_beam_spot_vertex_spread() -> None:
    """Vertex positions follow the beam spot: 400-ish vertices from 8 crossings at mu = 50.

    The sample standard deviation of N Gaussian values has a relative error 1/sqrt(2N) (3.5% for
    N = 400); the test allows 4 of those, and 4 standard errors sigma/sqrt(N) on the mean."""
    beam = BeamSpot()
    generator = PileupGenerator(mu=50, seed=SEED, beam_spot=beam)
    vertices = np.concatenate([generator.generate(n).vertex_position for n in range(8)])
    n = len(vertices)
    assert n > 300
    tolerance = 4 / np.sqrt(2 * n)
    for column, sigma in ((0, beam.sigma_xy), (1, beam.sigma_xy), (2, beam.sigma_z), (3, beam.sigma_t)):
        values = vertices[:, column]
        assert abs(np.std(values, ddof=1) / sigma - 1) < tolerance, (column, np.std(values, ddof=1), sigma)
        assert abs(np.mean(values)) < 4 * sigma / np.sqrt(n)


def test_truth_vertex_z_in_events(events: list[dict]) -> None:
    """The same check on the vertices of the simulated events (~40): sum(z^2)/sigma^2 is chi2(N);
    4 standard deviations of chi2, sqrt(2N)."""
    z = np.concatenate([event["vertices"].z for event in events])
    n = len(z)
    chi2 = np.sum(z**2) / Simulator().beam_sigma_z ** 2
    assert abs(chi2 - n) < 4 * np.sqrt(2 * n), (chi2, n)


def test_charged_multiplicity_per_interaction() -> None:
    """Pythia 8 inelastic pp at 14 TeV: tens of charged particles per interaction (full phase
    space, mean ~80 with the default Monash tune) and dN_ch/deta ~ 6 at central rapidity."""
    generator = PileupGenerator(mu=30, seed=SEED)
    crossings = [generator.generate(n) for n in range(4)]
    n_charged = np.concatenate([c.vertex_n_charged for c in crossings])
    assert 30 < n_charged.mean() < 150
    central = sum(int(np.count_nonzero(np.abs(_eta(c.px, c.py, c.pz)) < 0.5)) for c in crossings)
    dn_deta = central / len(n_charged)
    assert 3.5 < dn_deta < 9.0, dn_deta
    for crossing in crossings:  # charged only by default, all with their interaction's vertex
        assert (crossing.q != 0).all()
        assert (np.bincount(crossing.vertex, minlength=crossing.n_vertices + 1)[1:] == crossing.vertex_n_charged).all()


def test_hits_per_particle_barrel(events: list[dict]) -> None:
    """pT > 1 GeV, |eta| < 1 primaries cross 10 barrel layers (4 pixel, 4 short-strip, 2 long-
    strip) plus module overlaps: TrackML-like 8-15 hits."""
    nhits = []
    for event in events:
        p = event["particles"]
        fields = decode_particle_id(p.particle_id)
        primary = (fields["generation"] == 0) & (fields["sub_particle"] == 0)
        chosen = primary & (np.hypot(p.px, p.py) > 1.0) & (np.abs(_eta(p.px, p.py, p.pz)) < 1.0)
        nhits.append(p.nhits[chosen])
    nhits = np.concatenate(nhits)
    assert len(nhits) > 20
    assert 8 <= np.median(nhits) <= 15
    assert 8 <= nhits.mean() <= 15
    assert np.mean((nhits >= 8) & (nhits <= 15)) > 0.8


def test_hard_scatter_ttbar() -> None:
    sim = Simulator(mu=2, hard_scatter="ttbar", seed=SEED)
    event = sim.simulate(0)
    vertices, particles = event["vertices"], event["particles"]
    assert vertices.is_hard_scatter[0] and not vertices.is_hard_scatter[1:].any()
    assert vertices.n_charged[0] > 100  # ttbar: hundreds of charged particles
    assert (particles.vertex_id == 1).sum() > 50


# -- determinism ----------------------------------------------------------------------------------
def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].names == b[key].names, key
        for column in a[key].names:
            left, right = np.asarray(a[key][column]), np.asarray(b[key][column])
            assert left.dtype == right.dtype and left.tobytes() == right.tobytes(), (key, column)


def test_two_instances_same_event(events: list[dict], simulator: Simulator) -> None:
    other = pickle.loads(pickle.dumps(Simulator(mu=MU, seed=SEED, noise=True)))
    assert other == simulator
    _assert_same(other.simulate(2), events[2])


def test_event_alone_equals_event_in_sequence(events: list[dict], tmp_path) -> None:
    """Event 3 in a fresh process equals event 3 simulated after events 0..2 here."""
    out = tmp_path / "event3.pkl"
    code = textwrap.dedent(
        f"""
        import pickle
        from recotrig.sim.simulate import Simulator
        event = Simulator(mu={MU}, seed={SEED}, noise=True).simulate(3)
        with open({str(out)!r}, "wb") as f:
            pickle.dump({{k: v.to_arrays() for k, v in event.items()}}, f)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    with open(out, "rb") as f:
        alone = pickle.load(f)
    for key, container in events[3].items():
        for column, values in container.to_arrays().items():
            assert np.asarray(values).tobytes() == np.asarray(alone[key][column]).tobytes(), (key, column)


def test_different_seed_differs(events: list[dict]) -> None:
    other = Simulator(mu=MU, seed=SEED + 1, noise=True).simulate(0)
    assert len(other["hits"]) != len(events[0]["hits"]) or not other["hits"].equals(events[0]["hits"])


# -- small pieces -------------------------------------------------------------------------------------
def test_particle_id_encoding() -> None:
    fields = tuple(
        np.array(values) for values in ([1, 200, 16383], [0, 3, 1023], [1, 70000, 2**20 - 1], [0, 2, 63], [0, 5, 8191])
    )
    ids = encode_particle_id(*fields)
    assert ids.dtype == np.int64 and (ids > 0).all()
    decoded = decode_particle_id(ids)
    for name, values in zip(("vertex_primary", "vertex_secondary", "particle", "generation", "sub_particle"), fields):
        np.testing.assert_array_equal(decoded[name], values)
    with pytest.raises(ValueError, match="vertex_primary"):
        encode_particle_id(np.array([2**14]), 0, 1, 0, 0)


def test_config_validation_and_metadata() -> None:
    import json

    with pytest.raises(ValueError, match="hard scatter"):
        Simulator(hard_scatter="zprime")
    with pytest.raises(ValueError, match="mu"):
        Simulator(mu=-1)
    with pytest.raises(TypeError):
        Simulator(5)  # keyword-only
    meta = Simulator(mu=60, seed=3).metadata()
    json.dumps(meta)
    assert meta["mu"] == 60 and meta["seed"] == 3 and meta["detector"] == {"name": "generic", "field_T": 2.0}
    assert {"acts", "pythia8mc", "numpy"} <= set(meta["versions"])
    assert "SoftQCD:inelastic = on" in meta["generator"]["pythia_settings"]["minimum_bias"]


def test_empty_crossing() -> None:
    event = Simulator(mu=0, seed=SEED).simulate(0)
    assert all(len(container) == 0 for container in event.values())
