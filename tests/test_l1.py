"""Level-1 objects: the detector model's resolutions, physics sanity, premixing, determinism, stores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recotrig.edm import L1Objects
from recotrig.edm.trigger import L1_N_FEATURES, l1_feature_names, l1_features
from recotrig.io.errors import StoreError
from recotrig.sim.l1 import L1Response
from recotrig.sim.premix import L1Dataset

RESPONSE = L1Response()
POOL = {"pool_size": 4000, "pool_seed": 77}  # a small pile-up pool of the tests' own


def single(pdg: int, e: float, n: int, eta: float = 0.5, q: int = 0):
    """``n`` interactions of one particle each, of energy ``e`` at ``eta``, phi spread."""
    phi = np.linspace(-3, 3, n)
    pt = e / np.cosh(eta)
    particles = {
        "pdg": np.full(n, pdg),
        "q": np.full(n, q),
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": np.full(n, pt * np.sinh(eta)),
        "e": np.full(n, e),
    }
    deposits = RESPONSE.deposit(particles, np.ones(n, np.int64), np.random.default_rng(4))
    return RESPONSE.build(n, [(deposits, np.arange(n), np.arange(n))])


def objects_of(batch, kind: str) -> np.ndarray:
    return batch.pt[batch.kind == L1Objects.KINDS[kind]]


# -- the documented resolutions ------------------------------------------------------------------------
def test_photon_resolution_is_the_em_calorimeters():
    batch = single(22, 50.0, 4000)
    pt = objects_of(batch, "electron")
    assert len(pt) == pytest.approx(0.95 * 4000, abs=4 * np.sqrt(4000 * 0.05 * 0.95))  # 95 % efficient
    true_pt = 50.0 / np.cosh(0.5)
    expected = np.hypot(0.10 / np.sqrt(50.0), 0.01)  # 1.7 %
    assert np.mean(pt) / true_pt == pytest.approx(1.0, abs=0.003)
    assert np.std(pt) / np.mean(pt) == pytest.approx(expected, rel=0.08)


def test_muon_resolution_and_acceptance():
    batch = single(13, 40.0, 4000, q=-1)
    pt = objects_of(batch, "muon")
    true_pt = 40.0 / np.cosh(0.5)
    assert np.std(pt) / true_pt == pytest.approx(0.15, rel=0.08)
    assert np.mean(pt) / true_pt == pytest.approx(1.0, abs=0.01)
    outside = single(13, 40.0, 200, eta=2.6, q=1)
    assert len(objects_of(outside, "muon")) == 0  # |eta| > 2.4
    # muons leave no calorimeter energy: the MET of a one-muon crossing is the muon's pT
    f = batch.features()
    one = (f[:, 15] > 0) & (f[:, 18] == 0)
    np.testing.assert_allclose(f[one, 0], f[one, 15], rtol=1e-5)


def test_hadron_jet_resolution():
    batch = single(211, 100.0, 3000, eta=0.3, q=1)
    pt = objects_of(batch, "jet")
    true_pt = 100.0 / np.cosh(0.3)
    expected = np.hypot(1.0 / np.sqrt(100.0), 0.05)  # 11 %
    assert len(pt) > 0.97 * 3000
    assert np.mean(pt) / true_pt == pytest.approx(1.0, abs=0.02)
    assert np.std(pt) / np.mean(pt) == pytest.approx(expected, rel=0.12)


def test_soft_charged_particles_curl_before_the_calorimeter():
    soft = single(211, 0.6, 50, eta=0.0, q=1)
    met = objects_of(soft, "met")
    assert len(met) == 50 and np.all(met == 0)  # pT 0.6 GeV < 0.74 GeV: never reaches r = 1.29 m


def test_features_layout():
    names = l1_feature_names()
    assert len(names) == L1_N_FEATURES == 57 and names[:4] == ["met_pt", "met_eta", "met_phi", "electron0_pt"]
    objects = L1Objects(
        kind=[3, 0, 3, 1], pt=[20.0, 31.0, 50.0, 9.0], eta=[1.0, 0.0, -1.0, 0.2], phi=[0.1, 0.2, 0.3, 0.4]
    )
    f = l1_features(objects)
    assert f[0] == 31.0 and f[3] == 9.0 and f[27] == 50.0 and f[30] == 20.0 and f[15] == 0.0


# -- physics sanity with Pythia --------------------------------------------------------------------------
@pytest.mark.slow
def test_w_to_lepton_neutrino_has_a_lepton_and_met():
    batch = next(L1Dataset("wlnu", 0, 2000, seed=3).batches())[1]
    f = batch.features()
    lepton = np.maximum(f[:, 3], f[:, 15])  # leading e/gamma or muon
    # W -> e, mu, tau nu: two thirds give a prompt e or mu; about half of those above 20 GeV in acceptance
    assert 0.28 < np.mean(lepton > 20) < 0.45
    assert 22 < f[:, 0].mean() < 35  # the neutrino: MET ~ m_W / 3 on average
    assert 0.28 < batch.lepton_filter().mean() < 0.40  # ADC2021 Table 1: 55.6 % x 68 % = 38 %


@pytest.mark.slow
def test_zero_bias_activity_grows_with_mu():
    jets, met = [], []
    for mu in (20, 60, 140):
        f = next(L1Dataset("zerobias", mu, 1000, seed=4, **POOL).batches())[1].features()
        jets.append((f[:, 27::3] > 0).sum(axis=1).mean())
        met.append(f[:, 0].mean())
    assert jets[0] < jets[1] < jets[2] and met[0] < met[1] < met[2]
    assert 0.5 < jets[0] < 3.0  # about 1.5 jets above 15 GeV at mu = 20 (README)


@pytest.mark.slow
def test_generation_is_deterministic_and_independent_of_jobs(tmp_path):
    from recotrig.sequences.simulate_l1_cmd import simulate_l1

    args = dict(process="zerobias", mu=20.0, events=2500, seed=5, progress=False, **POOL)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    serial = simulate_l1(str(tmp_path / "a" / "l1.root"), jobs=1, **args)
    parallel = simulate_l1(str(tmp_path / "b" / "l1.root"), jobs=2, **args)
    assert serial["written"] == parallel["written"] == 2500
    assert (tmp_path / "a" / "l1.root").read_bytes() == (tmp_path / "b" / "l1.root").read_bytes()
    other = next(L1Dataset("zerobias", 20.0, 2500, seed=6, **POOL).batches())[1].features()
    same = next(L1Dataset("zerobias", 20.0, 2500, seed=5, **POOL).batches())[1].features()
    assert not np.array_equal(other, same)


@pytest.mark.slow
def test_pool_reuse_does_not_bias_the_inputs():
    """Crossings drawn with replacement from the pool vs crossings of fresh interactions, each used
    once: the same distributions of the inputs that carry the pile-up (KS test)."""
    from scipy.stats import ks_2samp

    fresh = L1Dataset("zerobias", 20.0, 1000, seed=8, pool_size=24000, pool_seed=78, fresh_pileup=True)
    assert fresh.pileup_needed() <= 24000
    a = np.concatenate([b.features() for _, b in fresh.batches()])
    b = next(L1Dataset("zerobias", 20.0, 1000, seed=9, **POOL).batches())[1].features()
    for column in (0, 3, 27, 30):  # MET, leading e/gamma, leading and second jet pT
        assert ks_2samp(a[:, column], b[:, column]).pvalue > 1e-3, l1_feature_names()[column]


# -- stores and bad input --------------------------------------------------------------------------------
def test_l1_reader_reads_the_bundled_sample():
    from recotrig.io.l1_reader import L1Reader
    from recotrig.sequences.samples import L1_SAMPLE

    reader = L1Reader(input=L1_SAMPLE)
    assert reader.provides() == {"l1", "crossing"}
    assert reader.n_events() == 10_000 + 4 * 500
    reader.prepare(0, 3)
    objects, crossing = reader.read(0)
    assert isinstance(objects, L1Objects) and crossing.process[0] == 0 and crossing.n_pileup[0] > 20


def test_reconstruction_stores_hold_l1_objects():
    from recotrig.io.store import open_store
    from recotrig.sequences.samples import SAMPLE_MU60

    store = open_store(SAMPLE_MU60)
    assert "l1" in store.collections
    event = store.read(0, 1, collections=["l1"])[0]
    assert (event["l1"].kind == 0).sum() == 1 and (event["l1"].kind == 3).sum() >= 2  # MET; tt-bar jets


def test_store_without_l1_objects_is_refused_naming_the_file(tmp_path):
    from recotrig.edm import CrossingInfo
    from recotrig.io.l1_reader import L1Reader
    from recotrig.io.store import open_writer

    path = tmp_path / "no_l1.root"
    writer = open_writer(str(path), format="root", metadata={})
    writer.append(1, {"crossing": CrossingInfo(process=[0], n_pileup=[3])})
    writer.close()
    with pytest.raises(StoreError, match=r"no_l1\.root.*no L1 objects"):
        L1Reader(input=str(path)).provides()


def test_nan_kinematics_are_refused_with_the_event_named(tmp_path):
    from recotrig.edm import CrossingInfo
    from recotrig.io.l1_reader import L1Reader
    from recotrig.io.store import open_writer

    path = tmp_path / "bad.root"
    writer = open_writer(str(path), format="root", metadata={})
    good = L1Objects(kind=[0, 3], pt=[10.0, 30.0], eta=[0.0, 1.0], phi=[0.0, 1.0])
    bad = L1Objects(kind=[0, 3], pt=[10.0, 30.0], eta=[0.0, np.nan], phi=[0.0, 1.0])
    for event_id, objects in ((5, good), (6, bad)):
        writer.append(event_id, {"l1": objects, "crossing": CrossingInfo(process=[0], n_pileup=[1])})
    writer.close()
    reader = L1Reader(input=str(path))
    reader.prepare(0, 2)
    reader.read(0)
    with pytest.raises(StoreError, match=r"bad\.root.*event 6.*eta"):
        reader.read(1)


def test_metadata_records_the_l1_model(tmp_path):
    from recotrig.io.store import read_metadata
    from recotrig.sequences.samples import L1_SAMPLE

    meta = read_metadata(L1_SAMPLE.split(",")[0])
    assert meta["process"] == "zerobias" and meta["mu"] == 60.0
    assert meta["l1_response"] == RESPONSE.to_dict()
    json.dumps(meta)
