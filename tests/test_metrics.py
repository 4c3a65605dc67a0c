"""Tests of recotrig.metrics on hand-built events whose answers are derived in the comments."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from recotrig.edm import FittedTracks, HitTruth, Particles, Tracks, TruthVertices, Vertices
from recotrig.metrics import (
    CLEAN,
    FAKE,
    MERGED,
    NO_PARTICLE,
    SPLIT,
    TrackingMetrics,
    VertexMetrics,
    format_table,
    match_tracks,
    match_vertices,
    robust_sigma,
    row_from_result,
    tracking_performance,
    trackml_score,
    trackml_weights,
    vertex_vertex_resolution,
    window_match,
    write_table,
)


def same_result(a: dict, b: dict) -> bool:
    """Dict equality with NaN == NaN; per-event rows compared as a set (they follow merge order)."""
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if key == "per_event":
            x, y = sorted(zip(*x.values())), sorted(zip(*y.values()))
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if isinstance(x, float) or isinstance(y, float):
            if x != pytest.approx(y, rel=1e-12, abs=1e-15):
                return False
        elif x != y:
            return False
    return True


def particles_table(ids, pt, *, q=None, vz=None, vertex_id=None) -> Particles:
    n = len(ids)
    cols = dict(
        particle_id=ids,
        vx=np.zeros(n),
        vy=np.zeros(n),
        vz=np.zeros(n) if vz is None else vz,
        px=np.asarray(pt, float),
        py=np.zeros(n),
        pz=np.zeros(n),
        q=np.ones(n, int) if q is None else q,
    )
    if vertex_id is not None:
        cols["vertex_id"] = vertex_id
    return Particles(cols)


# ------------------------------------------------------------------------------------------------
# TrackML score
# ------------------------------------------------------------------------------------------------
# hits 1-4: particle 11, weight 1/8 each (sum 1/2)
# hits 5-8: particle 22, weight 1/16 each (sum 1/4)
# hits 9-10: particle 33, weight 1/8 each (sum 1/4)
# hits 11-12: noise (particle 0), weight 0          -> total weight 1
SCORE_TRUTH = HitTruth(
    hit_id=np.arange(1, 13),
    particle_id=[11, 11, 11, 11, 22, 22, 22, 22, 33, 33, 0, 0],
    weight=[0.125] * 4 + [0.0625] * 4 + [0.125] * 2 + [0.0] * 2,
)


def test_trackml_score_hand_built():
    # T0 [1,2,3,5]: majority 11 with 3/4 of the track (>1/2) and 3/4 of 11's hits (>1/2):
    #    counts with the weight of hits 1,2,3 = 3/8
    # T1 [6,7,11]: majority 22 with 2/3 of the track but 2/4 of 22's hits (not > 1/2): no
    # T2 [9,10]: 33 with 2/2 and 2/2: counts 1/4
    # hits 4, 8, 12 on no track: one-hit tracks of particles with more than one hit: no
    tracks = Tracks(hit_ids=[[1, 2, 3, 5], [6, 7, 11], [9, 10]])
    assert trackml_score(tracks, SCORE_TRUTH) == 0.375 + 0.25


def test_trackml_score_is_order_independent_and_perfect_is_one():
    perfect = Tracks(hit_ids=[[10, 9], [8, 5, 6, 7], [4, 3, 2, 1]])
    assert trackml_score(perfect, SCORE_TRUTH) == 1.0


def test_trackml_score_exact_half_does_not_count():
    # [1,2,5,6]: 11 and 22 have 2 hits each: the majority (11, lowest id) has exactly 1/2 of
    # the track, which is not more than half -> 0
    assert trackml_score(Tracks(hit_ids=[[1, 2, 5, 6]]), SCORE_TRUTH) == 0.0


def test_trackml_score_unassigned_hit_of_one_hit_particle_counts():
    # official semantics: a hit on no track is a one-hit track; particle 44 has one hit (weight
    # 1/4 of a total of 5/4), so it scores (1/4)/(5/4) = 0.2 with no tracks at all
    truth = HitTruth(hit_id=[1, 2, 3], particle_id=[11, 11, 44], weight=[0.5, 0.5, 0.25])
    assert trackml_score(Tracks.empty(), truth) == pytest.approx(0.2, rel=1e-15)
    # ... and particle 11 split over two singletons: 1/2 of its hits each, never more
    assert trackml_score(Tracks(hit_ids=[[3]]), truth) == pytest.approx(0.2, rel=1e-15)


def test_trackml_score_noise_is_an_ordinary_particle():
    # noise hits get weight 1/4 each here (total 1 + 1/2 = 3/2); track [11,12] holds all noise
    # hits and is all noise, so it counts: (1/2)/(3/2) = 1/3
    w = np.asarray(SCORE_TRUTH["weight"]).copy()
    w[10:] = 0.25
    assert trackml_score(Tracks(hit_ids=[[11, 12]]), SCORE_TRUTH, weights=w) == pytest.approx(1 / 3, rel=1e-15)
    # with the official zero noise weight it adds nothing
    assert trackml_score(Tracks(hit_ids=[[11, 12]]), SCORE_TRUTH) == 0.0


def test_trackml_score_shared_hits_go_to_first_track():
    # hits 1,2 are on both tracks; "first" gives them to T0 = [1,2] (2/4 of particle 11: no),
    # leaving T1 = [3,4] (2/4: no) -> 0. Giving them to T1 instead would score 1/2.
    tracks = Tracks(hit_ids=[[1, 2], [1, 2, 3, 4]])
    assert trackml_score(tracks, SCORE_TRUTH) == 0.0
    assert trackml_score(Tracks(hit_ids=[[1, 2, 3, 4], [1, 2]]), SCORE_TRUTH) == 0.5
    with pytest.raises(ValueError, match="more than one track"):
        trackml_score(tracks, SCORE_TRUTH, shared_hits="error")


def test_trackml_score_repeated_hit_on_one_track_counts_once():
    # [1,1,2,3] is [1,2,3]: 3/3 of the track, 3/4 of particle 11 -> 3/8
    assert trackml_score(Tracks(hit_ids=[[1, 1, 2, 3]]), SCORE_TRUTH) == 0.375


def test_trackml_score_needs_weights_and_known_hits():
    truth = HitTruth(hit_id=[1, 2], particle_id=[5, 5])
    with pytest.raises(ValueError, match="no 'weight' column"):
        trackml_score(Tracks(hit_ids=[[1, 2]]), truth)
    assert trackml_score(Tracks(hit_ids=[[1, 2]]), truth, weights=[0.5, 0.5]) == 1.0
    with pytest.raises(ValueError, match="weights has shape"):
        trackml_score(Tracks(hit_ids=[[1, 2]]), truth, weights=[1.0])
    with pytest.raises(ValueError, match=r"not in HitTruth\.hit_id"):
        trackml_score(Tracks(hit_ids=[[1, 99]]), truth, weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="duplicate"):
        trackml_score(Tracks.empty(), HitTruth(hit_id=[1, 1], particle_id=[5, 5], weight=[1, 1]))


def test_trackml_score_empty_and_all_noise_events():
    empty = HitTruth(hit_id=np.zeros(0, int), particle_id=np.zeros(0, int), weight=np.zeros(0))
    assert trackml_score(Tracks.empty(), empty) == 0.0
    noise = HitTruth(hit_id=[1, 2], particle_id=[0, 0], weight=[0.0, 0.0])
    assert trackml_score(Tracks(hit_ids=[[1, 2]]), noise) == 0.0


# ------------------------------------------------------------------------------------------------
# TrackML weights
# ------------------------------------------------------------------------------------------------
# Order weights of a 4-hit particle: the proposal (10,8,6,5,3,3,3,5,6) sits at x = i*3/8; at
# x = 0, 1, 2, 3 the interpolation gives 10, 6 - (0.25/0.375) = 16/3, 3, 6 (sum 73/3), i.e.
# (30, 16, 9, 18) / 73 from the first to the last hit.
ORDER4 = np.array([30.0, 16.0, 9.0, 18.0]) / 73.0


def test_trackml_weights_hand_built():
    # particle 1: pT 3 GeV -> pT weight 1; vz = 10; |tz - vz| = 40, 5, 20, 100 -> order 2,0,1,3
    # particle 2: pT 1.75 -> 0.2 + 0.8 * (1.25 / 2.5) = 0.6; |tz - vz| = 1, 2, 3, 4 -> 0,1,2,3
    # particle 3: 3 hits -> 0; noise -> 0.  Raw total 1 + 0.6 = 1.6.
    particles = particles_table([1, 2, 3], [3.0, 1.75, 10.0], vz=[10.0, 0.0, 0.0])
    truth = HitTruth(
        hit_id=np.arange(100, 113),
        particle_id=[1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 0, 0],
        tz=[50.0, 15.0, 30.0, -90.0, 1.0, -2.0, 3.0, -4.0, 1.0, 2.0, 3.0, 0.0, 1.0],
    )
    w = trackml_weights(particles, truth)
    expect = np.concatenate([ORDER4[[2, 0, 1, 3]], 0.6 * ORDER4, np.zeros(5)]) / 1.6
    np.testing.assert_allclose(w, expect, rtol=1e-14, atol=0)
    assert w.sum() == pytest.approx(1.0, rel=1e-14)


def test_trackml_weights_ties_pt_edges_long_particles_and_hits_fallback():
    # ties: |dz| = 5, 20, 20, 100 -> pandas average ranks 1, 2.5, 2.5, 4 -> minus 1, truncated:
    # 0, 1, 1, 3 -> raw (30, 16, 16, 18)/73 (the official code's tie behaviour)
    particles = particles_table([1], [5.0])
    truth = HitTruth(hit_id=[1, 2, 3, 4], particle_id=[1, 1, 1, 1], tz=[5.0, 20.0, -20.0, 100.0])
    raw = np.array([30.0, 16.0, 16.0, 18.0]) / 73.0
    np.testing.assert_allclose(trackml_weights(particles, truth), raw / raw.sum(), rtol=1e-14)
    # pT below 0.05 GeV weighs 0; from 0.05 to 0.5 GeV it weighs 0.2 (same order weights)
    low = particles_table([1, 2], [0.04, 0.3])
    truth2 = HitTruth(hit_id=np.arange(8), particle_id=[1] * 4 + [2] * 4, tz=[1.0, 2.0, 3.0, 4.0] * 2)
    np.testing.assert_allclose(trackml_weights(low, truth2), np.concatenate([np.zeros(4), ORDER4]), rtol=1e-14)
    # 25 hits: the first 20 take the 20-hit order weights, hits 21-25 weigh 0
    long = HitTruth(hit_id=np.arange(25), particle_id=np.ones(25, int), tz=np.arange(25.0)[::-1] + 1)
    w = trackml_weights(particles, long)[::-1]
    assert np.all(w[20:] == 0) and w[:20].sum() == pytest.approx(1.0) and w[0] > w[5] < w[19]
    # no tz: the order comes from Hits.z; all-zero events give zeros
    from recotrig.edm import Hits

    no_tz = HitTruth(hit_id=[1, 2, 3, 4], particle_id=[1, 1, 1, 1])
    hits = Hits(hit_id=[4, 3, 2, 1], x=np.zeros(4), y=np.zeros(4), z=[100.0, -20.0, 20.0, 5.0])
    np.testing.assert_allclose(trackml_weights(particles, no_tz, hits), raw / raw.sum(), rtol=1e-14)
    with pytest.raises(ValueError, match="no 'tz' column"):
        trackml_weights(particles, no_tz)
    assert np.all(trackml_weights(particles, HitTruth(hit_id=[1], particle_id=[0], tz=[0.0])) == 0)


# ------------------------------------------------------------------------------------------------
# track matching and tracking performance
# ------------------------------------------------------------------------------------------------
# truth: 11 -> hits 1-4, 22 -> 5-8, 33 -> 9,10, noise -> 11,12, 55 -> 13-15
TRUTH = HitTruth(
    hit_id=np.arange(1, 16),
    particle_id=[11] * 4 + [22] * 4 + [33] * 2 + [0] * 2 + [55] * 3,
    weight=[0.125] * 4 + [0.0625] * 4 + [0.125] * 2 + [0.0] * 2 + [0.0] * 3,
)
# 11, 22: pT 2 GeV, 4 hits -> reconstructable; 33: 2 hits (< 3) no; 44: neutral, no hits, no;
# 55: pT 0.5 < 1 GeV no
PARTICLES = particles_table([11, 22, 33, 44, 55], [2.0, 2.0, 2.0, 5.0, 0.5], q=[1, -1, 1, 0, 1])
TRACKS = Tracks(
    hit_ids=[
        [1, 2, 3, 11],  # T0: 11, purity 3/4, matched, duplicate of T1 (fewer hits of 11)
        [1, 2, 3, 4],  # T1: 11, purity 1, the best match of 11
        [5, 9, 10],  # T2: 33, purity 2/3, matched
        [11, 12],  # T3: noise only: no particle, fake
        [7, 11, 12],  # T4: 22 with 1/3, fake
        [6, 13],  # T5: 22 and 55 tie with 1 hit each -> 22 (lowest id), purity 1/2 >= 1/2: matched
        [],  # T6: empty: fake
    ]
)


def test_match_tracks_hand_built():
    m = match_tracks(TRACKS, TRUTH)
    assert m.nhits.tolist() == [4, 4, 3, 2, 3, 2, 0]
    assert m.particle.tolist() == [11, 11, 33, NO_PARTICLE, 22, 22, NO_PARTICLE]
    np.testing.assert_allclose(m.purity, [0.75, 1.0, 2 / 3, 0.0, 1 / 3, 0.5, 0.0])
    np.testing.assert_allclose(m.particle_fraction, [0.75, 1.0, 1.0, 0.0, 0.25, 0.25, 0.0])
    assert m.matched.tolist() == [True, True, True, False, False, True, False]
    assert m.duplicate.tolist() == [True, False, False, False, False, False, False]
    assert m.matched_particle.tolist() == [11, 11, 33, -1, -1, 22, -1]
    assert m.particle_ids.tolist() == [11, 22, 33, 55]
    assert m.particle_nhits.tolist() == [4, 4, 2, 3]
    assert m.particle_track.tolist() == [1, 5, 2, -1]
    assert m.particle_ntracks.tolist() == [2, 1, 1, 0]


def test_tracking_performance_hand_built():
    r = tracking_performance(TRACKS, TRUTH, PARTICLES)
    # reconstructable 11 and 22, both matched (T1, T5): efficiency 1
    # fakes T3, T4, T6: 3/7; duplicate T0: 1/7
    assert (r["n_reconstructable"], r["n_reconstructed"]) == (2, 2)
    assert r["efficiency"] == 1.0
    assert r["fake_rate"] == 3 / 7 and r["duplicate_rate"] == 1 / 7
    assert (r["n_tracks"], r["n_matched_tracks"], r["n_fake_tracks"], r["n_duplicate_tracks"]) == (7, 4, 3, 1)
    # TrackML: T0 is the first owner of hits 1,2,3 -> [1,2,3,11] counts 3/8; T1 keeps [4] (no);
    # T2 [5,9,10]: 33 2/3 and 2/2 -> 1/4; nothing else -> 5/8
    assert r["trackml_score"] == 0.625 and r["n_trackml_events"] == 1


def test_tracking_performance_double_matching_and_purity_cut():
    # double matching: T5 holds only 1/4 of 22 -> fake; 22 is then lost: efficiency 1/2, fakes 4/7
    r = tracking_performance(TRACKS, TRUTH, PARTICLES, double_matching=True)
    assert r["efficiency"] == 0.5 and r["fake_rate"] == 4 / 7
    # min_purity 0.6: T5 (1/2) fake too; T2 (2/3) and T0 (3/4) stay
    r = tracking_performance(TRACKS, TRUTH, PARTICLES, min_purity=0.6)
    assert r["efficiency"] == 0.5 and r["fake_rate"] == 4 / 7 and r["duplicate_rate"] == 1 / 7
    # min_pt 0.4 makes 55 (3 hits) reconstructable; it has no matched track: 2/3
    r = tracking_performance(TRACKS, TRUTH, PARTICLES, min_pt=0.4)
    assert r["efficiency"] == pytest.approx(2 / 3) and r["n_reconstructable"] == 3


def test_duplicates_resolved_by_chi2_then_index():
    truth = HitTruth(hit_id=[1, 2, 3], particle_id=[7, 7, 7])
    same = [[1, 2], [2, 1]]  # same hits: equal major hits and purity
    assert match_tracks(Tracks(hit_ids=same), truth).duplicate.tolist() == [False, True]
    assert match_tracks(Tracks(hit_ids=same, chi2=[5.0, 2.0]), truth).duplicate.tolist() == [True, False]
    # more hits of the particle wins over chi2
    m = match_tracks(Tracks(hit_ids=[[1, 2], [1, 2, 3]], chi2=[1.0, 9.0]), truth)
    assert m.duplicate.tolist() == [True, False] and m.particle_track.tolist() == [1]


def test_all_fake_and_empty_events():
    fake = Tracks(hit_ids=[[11, 12], [1, 5, 9, 13]])  # noise only; 4 particles with 1 hit each -> 1/4
    r = tracking_performance(fake, TRUTH, PARTICLES)
    assert r["fake_rate"] == 1.0 and r["efficiency"] == 0.0 and r["duplicate_rate"] == 0.0
    empty = tracking_performance(Tracks.empty(), HitTruth.empty(), Particles.empty())
    assert empty["n_tracks"] == 0 and math.isnan(empty["efficiency"]) and math.isnan(empty["fake_rate"])
    assert empty["n_trackml_events"] == 0  # no weights: no score


def test_tracking_metrics_merge_of_halves_equals_whole():
    other_truth = HitTruth(hit_id=[1, 2, 3, 4], particle_id=[5, 5, 5, 6], weight=[0.25] * 4)
    other_particles = particles_table([5, 6], [1.5, 1.5])
    other_tracks = Tracks(hit_ids=[[1, 2, 3], [4, 1]])
    events = [(TRACKS, TRUTH, PARTICLES, 0.010), (other_tracks, other_truth, other_particles, 0.030)] * 2
    whole = TrackingMetrics()
    halves = [TrackingMetrics(), TrackingMetrics()]
    for i, (tracks, truth, particles, seconds) in enumerate(events):
        whole.add_event(tracks, truth, particles, time_s=seconds)
        halves[i % 2].add_event(tracks, truth, particles, time_s=seconds)
    merged = pickle.loads(pickle.dumps(halves[0])).merge(pickle.loads(pickle.dumps(halves[1])))
    assert same_result(merged.result(), whole.result())
    assert same_result(TrackingMetrics.merged(halves).result(), whole.result())
    # event 2: track [1,2,3] -> 5 (3/3, 3/3 of 5): 3/4 of the weight; [4,1] loses hit 1 -> [4]:
    # 6 has one hit -> counts 1/4 -> score 1. Mean TrackML over 4 events = (5/8 + 1) / 2
    r = whole.result()
    assert r["trackml_score"] == pytest.approx((0.625 + 1.0) / 2) and r["ms_per_event"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="different options"):
        TrackingMetrics(min_pt=2.0).merge(whole)


# ------------------------------------------------------------------------------------------------
# vertexing
# ------------------------------------------------------------------------------------------------
# Truth vertices V1 (z 0), V2 (z 10), V3 (z 10.3), V4 (z -20). One 2-hit track per particle:
#   t0 t1 t2 -> 101 102 103 (V1), t3 t4 -> 201 202 (V2), t5 t6 -> 301 302 (V3), t7 -> 401 (V4),
#   t8 -> noise hits: a fake track.
# Reconstructable tracks ("matched": particles matched by a track): V1 3, V2 2, V3 2, V4 1.
PIDS = [101, 102, 103, 201, 202, 301, 302, 401]
V_TRUTH = HitTruth(hit_id=np.arange(1, 19), particle_id=np.repeat(PIDS, 2).tolist() + [0, 0])
V_TRACKS = Tracks(hit_ids=[[2 * i + 1, 2 * i + 2] for i in range(len(PIDS))] + [[17, 18]])
V_PARTICLES = particles_table(PIDS, np.ones(len(PIDS)), vertex_id=[p // 100 for p in PIDS])
TRUTH_VERTICES = TruthVertices(vertex_id=[1, 2, 3, 4], x=np.zeros(4), y=np.zeros(4), z=[0.0, 10.0, 10.3, -20.0])
RECO_Z = [0.1, 10.2, 10.0, 0.5, 30.0, -20.0]
RECO = Vertices(
    x=np.zeros(6),
    y=np.zeros(6),
    z=RECO_Z,
    track_index=[[0, 1, 2], [3, 4, 5], [6], [0, 8], [8], [7, 1]],
    track_weight=[[1, 1, 1], [1, 1, 1], [1], [0.5, 0.5], [1], [1, 0.05]],
)
# R0: all V1 -> clean (1.0). R1: V2 2, V3 1 -> 2/3 < 0.7 merged (majority V2). R2: V3 -> clean.
# R3: V1 0.5 + fake 0.5 -> 1/2, majority V1, but R0 ranks higher (total weight 3 > 1) -> split.
# R4: only the fake track -> fake. R5: t1 has weight 0.05 < 0.1 and is ignored -> V4, clean.


def test_match_vertices_by_tracks():
    m = match_vertices(RECO, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)
    assert m.mode == "tracks" and m.rank_by == "weight"
    assert m.classification.tolist() == [CLEAN, MERGED, CLEAN, SPLIT, FAKE, CLEAN]
    assert m.truth_id.tolist() == [1, 2, 3, 1, -1, 4]
    np.testing.assert_allclose(m.match_fraction, [1.0, 2 / 3, 1.0, 0.5, 0.0, 1.0])


def test_vertex_metrics_by_tracks():
    vm = VertexMetrics(window_min_tracks=2)
    vm.add_event(RECO, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)
    r = vm.result()
    assert r["matching"] == "tracks" and r["reconstructable_source"] == "matched"
    assert (r["n_clean"], r["n_merged"], r["n_split"], r["n_fake"]) == (3, 1, 1, 1)
    # reconstructable (>= 2 tracks): V1, V2, V3; found by R0 (clean), R1 (merged), R2 (clean)
    assert r["n_reconstructable"] == 3 and r["efficiency"] == 1.0 and r["efficiency_clean"] == 2 / 3
    assert r["merge_rate"] == r["split_rate"] == r["fake_rate"] == 1 / 6
    # clean residuals: R0 0.1, R2 10.0 - 10.3 = -0.3, R5 0 -> median 0, |dev| median 0.1
    assert r["z_sigma_core"] == pytest.approx(1.4826 * 0.1)
    assert r["z_rms"] == pytest.approx(math.sqrt(0.1 / 3))
    # window (0.5 mm, closest first): R2-V2 (0), R5-V4 (0), R0-V1 (0.1), R1-V3 (0.1); R3 and R4
    # unpaired -> 2 false positives; eligible V1, V2, V3 (>= 2 tracks here) all found; R5 is
    # paired with the non-eligible V4 (neither found nor false)
    assert r["window_efficiency"] == 1.0 and r["window_fp_per_event"] == 2.0
    assert r["n_window_paired_other"] == 1
    assert r["window_z_rms"] == pytest.approx(math.sqrt(0.02 / 3))


def test_split_ranked_by_sum_pt2_when_tracks_have_momentum():
    # t8 (the fake track) gets pT 10 GeV, the rest 1 GeV: R3 sum pT^2 = 1 + 100 > R0's 3, so R3
    # (merged) keeps V1 and R0 becomes the split vertex
    qop = np.ones(9)
    qop[8] = 0.1
    tracks = V_TRACKS.with_columns(qop=qop, theta=np.full(9, np.pi / 2))
    m = match_vertices(RECO, TRUTH_VERTICES, tracks=tracks, truth=V_TRUTH, particles=V_PARTICLES)
    assert m.rank_by == "sumpt2"
    assert m.classification.tolist() == [SPLIT, MERGED, CLEAN, MERGED, FAKE, CLEAN]
    np.testing.assert_allclose(m.rank, [3.0, 3.0, 1.0, 101.0, 100.0, 1.0])


def test_position_fallback():
    # no track_index: pairs as in the window test; R3 lies 0.5 from V1 (taken) -> split, R4 fake
    positions = Vertices(x=np.zeros(6), y=np.zeros(6), z=RECO_Z)
    vm = VertexMetrics()
    match = vm.add_event(positions, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)
    assert match.mode == "position"
    assert match.classification.tolist() == [CLEAN, CLEAN, CLEAN, SPLIT, FAKE, CLEAN]
    assert match.truth_id.tolist() == [1, 3, 2, 1, -1, 4]
    r = vm.result()
    assert r["matching"] == "position" and r["efficiency"] == 1.0 and r["efficiency_clean"] == 1.0
    # without R2, V2 is left over within 0.5 of R1 (paired with V3) -> R1 merged
    keep = [0, 1, 3, 4, 5]
    m = match_vertices(positions.select(keep), TRUTH_VERTICES, reconstructable=np.array([1, 1, 1, 0], bool))
    assert m.classification.tolist() == [CLEAN, MERGED, SPLIT, FAKE, CLEAN]


def test_window_match_closest_first_one_to_one():
    # truth at 0 and 0.4; |dz| pairs sorted: (0.35, 0.4) 0.05, (0.3, 0.4) 0.1, (-0.2, 0) 0.2,
    # (0.3, 0) 0.3: reco 0.35 takes 0.4, reco -0.2 takes 0, reco 0.3 is left although it is
    # within the window of both (each truth vertex is taken once); reco 5 is out of the window
    r, t = window_match([-0.2, 0.3, 0.35, 5.0], [0.0, 0.4], window=0.5)
    assert sorted(zip(r.tolist(), t.tolist())) == [(0, 0), (2, 1)]
    r, t = window_match(np.zeros(0), [1.0])
    assert len(r) == len(t) == 0


def test_vertex_vertex_resolution_estimator():
    edges = np.linspace(0.0, 1.0, 11)  # centres 0.05 ... 0.95
    truth = np.full(10, 100)
    reco = np.array([0, 20, 40, 60, 80, 100, 100, 100, 100, 100])
    # plateau (0.5, 1.0): level 1; ratio 0.4 at 0.25 and 0.6 at 0.35 -> 0.5 at 0.30
    d50, sigma = vertex_vertex_resolution(reco, truth, edges, plateau=(0.5, 1.0))
    assert d50 == pytest.approx(0.30) and sigma == pytest.approx(0.30 / math.sqrt(2 * math.log(2)))
    # scaling the reco counts (an efficiency) does not change it
    assert vertex_vertex_resolution(reco // 2, truth, edges, plateau=(0.5, 1.0))[0] == pytest.approx(0.30)
    # no depletion: resolved below the binning -> NaN
    assert math.isnan(vertex_vertex_resolution(truth, truth, edges, plateau=(0.5, 1.0))[0])


def test_vertex_metrics_pair_histograms():
    # 3 reco vertices at 0, 1, 3 -> |dz| 1, 3, 2; two reconstructable truth vertices 2 apart
    vm = VertexMetrics(dz_bin=0.5, dz_max=4.0, reconstructable="column")
    reco = Vertices(x=np.zeros(3), y=np.zeros(3), z=[0.0, 1.0, 3.0])
    truth_vertices = TruthVertices(
        vertex_id=[1, 2, 3], x=np.zeros(3), y=np.zeros(3), z=[0.0, 2.0, 9.0], n_reconstructable=[5, 5, 1]
    )
    vm.add_event(reco, truth_vertices)
    assert vm.sample("vv_reco_pairs").tolist() == [0, 0, 1, 0, 1, 0, 1, 0]
    assert vm.sample("vv_truth_pairs").tolist() == [0, 0, 0, 0, 1, 0, 0, 0]


def test_found_pair_resolution_is_not_lifted_by_cutting_vertices_in_two():
    """Truth pairs 0.05-1.5 mm apart: a finder that merges the pairs closer than 0.3 mm into one
    vertex, and the same finder that also cuts each vertex of a resolved pair into two 0.1 mm
    apart (false positives). The unmatched pair ratio counts the cut pieces as resolved close
    pairs and calls the second finder's resolution far below 0.3 mm; the found pairs give both
    the same resolution, where the merging starts."""
    separations = np.repeat(np.arange(0.05, 1.5, 0.05), 8)
    plain = VertexMetrics(dz_bin=0.05, dz_max=4.0, plateau=(0.5, 1.5), reconstructable="column")
    cutting = VertexMetrics(dz_bin=0.05, dz_max=4.0, plateau=(0.5, 1.5), reconstructable="column")
    for dz in separations:
        truth_z = np.array([0.0, dz])
        truth = TruthVertices(vertex_id=[1, 2], x=np.zeros(2), y=np.zeros(2), z=truth_z, n_reconstructable=[9, 9])
        found = np.array([dz / 2]) if dz < 0.3 else truth_z
        cut = found if dz < 0.3 else np.sort(np.concatenate([found - 0.05, found + 0.05]))
        plain.add_event(Vertices(x=np.zeros(len(found)), y=np.zeros(len(found)), z=found), truth)
        cutting.add_event(Vertices(x=np.zeros(len(cut)), y=np.zeros(len(cut)), z=cut), truth)
    a, b = plain.result(), cutting.result()
    assert (
        a["vv_found_resolution"] == pytest.approx(0.3, abs=0.03)
        and b["vv_found_resolution"] == a["vv_found_resolution"]
    )
    assert a["vv_resolution"] == a["vv_found_resolution"]
    assert not b["vv_resolution"] >= 0.15  # "resolved" below 0.15 mm, or already in the first bin (NaN)
    # bootstrap errors over the events: the step sits between two bins, 0.05 mm apart
    assert (
        0.0 <= a["vv_found_resolution_error"] < 0.03
        and a["vv_found_resolution_error"] == b["vv_found_resolution_error"]
    )
    assert math.isnan(VertexMetrics().result()["vv_found_resolution_error"])
    assert b["vv_found_pair_efficiency"]["plateau_level"] == pytest.approx(1.0)


def test_separable_pairs_are_those_the_vertices_own_tracks_tell_apart():
    """V2 (z 10) and V3 (z 10.3) have two tracks each. Their weighted mean z0 differ by 0.3 mm; with
    sigma(z0) = 0.09 mm each mean's standard error is 0.09 / sqrt(2), the difference's 0.09 mm: 3.3
    standard errors (separable at 3 sigma); with 0.2 mm 1.5 (not). V1 (z 0) is 10 mm from both; V4 has one track and is not
    reconstructable. Without fitted tracks there is no figure."""
    z0 = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.3, 10.3, -20.0, 5.0])

    def separable(sigma: float) -> list[int]:
        cov = np.zeros((9, 6, 6))
        cov[:, 1, 1] = sigma**2
        tracks = FittedTracks(
            hit_ids=V_TRACKS["hit_ids"],
            d0=np.zeros(9),
            z0=z0,
            phi=np.zeros(9),
            theta=np.ones(9),
            qop=np.ones(9),
            cov=cov,
        )
        vm = VertexMetrics(dz_bin=0.7, dz_max=12.6)  # 0.3 mm in bin 0, 10.0 and 10.3 mm in bin 14
        vm.add_event(RECO, TRUTH_VERTICES, tracks=tracks, truth=V_TRUTH, particles=V_PARTICLES)
        counts = vm.sample("vv_separable_pairs")
        return [int(k) for k in np.flatnonzero(counts) for _ in range(counts[k])]

    assert separable(0.09) == [0, 14, 14]
    assert separable(0.2) == [14, 14]
    vm = VertexMetrics()
    vm.add_event(RECO, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)
    r = vm.result()
    assert math.isnan(r["vv_separable_resolution"]) and "vv_separable_pair_efficiency" not in r


def test_vertex_metrics_empty_and_all_fake_events():
    vm = VertexMetrics()
    vm.add_event(Vertices.empty(), TruthVertices.empty())
    r = vm.result()
    assert r["n_reco"] == 0 and math.isnan(r["efficiency"]) and math.isnan(r["z_sigma_core"])
    assert r["window_fp_per_event"] == 0.0
    # every reco vertex made of the fake track only -> all fake, nothing found
    fakes = Vertices(x=np.zeros(2), y=np.zeros(2), z=[50.0, 60.0], track_index=[[8], [8]])
    vm.add_event(fakes, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)
    r = vm.result()
    assert r["fake_rate"] == 1.0 and r["efficiency"] == 0.0 and r["window_fp_per_event"] == 1.0
    with pytest.raises(ValueError, match="reconstructable"):
        VertexMetrics().add_event(fakes, TRUTH_VERTICES)
    with pytest.raises(ValueError, match="track_index"):
        bad = Vertices(x=[0.0], y=[0.0], z=[0.0], track_index=[[42]])
        match_vertices(bad, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)


def test_vertex_metrics_merge_of_halves_equals_whole():
    rng = np.random.default_rng(7)
    positions = [Vertices(x=np.zeros(4), y=np.zeros(4), z=np.sort(rng.normal(0, 3, 4))) for _ in range(3)]
    events = [dict(vertices=RECO, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)]
    events += [dict(vertices=p, particles=V_PARTICLES) for p in positions]
    whole = VertexMetrics(dz_bin=0.5, dz_max=20.0, plateau=(5.0, 20.0))
    halves = [VertexMetrics(dz_bin=0.5, dz_max=20.0, plateau=(5.0, 20.0)) for _ in range(2)]
    for i, event in enumerate(events):
        kwargs = {k: v for k, v in event.items() if k != "vertices"}
        whole.add_event(event["vertices"], TRUTH_VERTICES, time_s=0.002, **kwargs)
        halves[i % 2].add_event(event["vertices"], TRUTH_VERTICES, time_s=0.002, **kwargs)
    merged = pickle.loads(pickle.dumps(halves[1])).merge(halves[0])
    assert same_result(merged.result(), whole.result())
    r = whole.result()
    assert r["matching"] == "mixed" and r["reconstructable_source"] == "charged+matched"
    assert r["n_events"] == 4 and r["ms_per_event"] == pytest.approx(2.0)


def test_robust_sigma():
    assert robust_sigma(np.array([-1.0, 0.0, 1.0, 100.0])) == pytest.approx(1.4826 * 1.0)
    assert math.isnan(robust_sigma(np.zeros(0)))


# ------------------------------------------------------------------------------------------------
# comparison table
# ------------------------------------------------------------------------------------------------
def comparison_rows() -> list[dict]:
    tracking = tracking_performance(TRACKS, TRUTH, PARTICLES)
    vm = VertexMetrics(window_min_tracks=2)
    vm.add_event(RECO, TRUTH_VERTICES, tracks=V_TRACKS, truth=V_TRUTH, particles=V_PARTICLES)
    return [
        row_from_result("ckf", tracking, ms_per_event=12.5),
        row_from_result("amvf", vm.result(), ms_per_event=3.25),
        row_from_result("pvfinder", vm.result(), style="window"),
    ]


def test_row_from_result_and_format_table():
    rows = comparison_rows()
    assert rows[0]["duplicate"] == 1 / 7 and math.isnan(rows[0]["merge"])
    assert rows[1]["merge"] == 1 / 6 and rows[1]["resolution_mm"] == pytest.approx(0.14826)
    assert rows[2]["fp_per_event"] == 2.0 and math.isnan(rows[2]["fake"]) and math.isnan(rows[2]["ms_per_event"])
    text = format_table(rows)
    assert text == (
        "algorithm     eff    fake  FP/event     dup   merge   split  res [mm]  ms/event\n"
        "---------  ------  ------  --------  ------  ------  ------  --------  --------\n"
        "ckf        1.0000  0.4286         -  0.1429       -       -         -   12.5000\n"
        "amvf       1.0000  0.1667         -       -  0.1667  0.1667    0.1483    3.2500\n"
        "pvfinder   1.0000       -    2.0000       -       -       -    0.1483         -\n"
    )
    with pytest.raises(ValueError, match="algorithm"):
        format_table([{"efficiency": 1.0}])


def test_write_table_json_and_root(tmp_path):
    import uproot

    rows = comparison_rows()
    paths = write_table(rows, tmp_path / "out", record={"sequence": "test"})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["comparison.json", "comparison.root"]
    data = json.loads(paths["json"].read_text())
    assert [r["algorithm"] for r in data["rows"]] == ["ckf", "amvf", "pvfinder"]
    assert data["rows"][0]["merge"] is None and "ms_per_event" not in data["rows"][0]  # timing is not written
    assert data["run"] == {"sequence": "test"}
    first = paths["root"].read_bytes()
    write_table(rows, tmp_path / "out", record={"sequence": "test"})
    assert paths["root"].read_bytes() == first  # reproducible bytes
    with uproot.open(paths["root"]) as f:
        arrays = f["comparison"].arrays(library="np")
    assert arrays["algorithm"].tolist() == ["ckf", "amvf", "pvfinder"]
    np.testing.assert_allclose(arrays["efficiency"], [1.0, 1.0, 1.0])
    assert np.isnan(arrays["merge"][0]) and arrays["fp_per_event"][2] == 2.0 and np.isnan(arrays["fake"][2])
    # rewriting replaces the files and leaves no temporary files behind
    write_table(rows[:1], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["comparison.json", "comparison.root"]
    assert len(json.loads(paths["json"].read_text())["rows"]) == 1


def test_empty_events_are_left_out_of_the_trackml_mean():
    from recotrig.edm import HitTruth, Particles, Tracks

    metrics = TrackingMetrics(min_hits=1)
    truth = HitTruth(hit_id=[1, 2, 3, 4], particle_id=[5, 5, 5, 5], weight=[0.25] * 4)
    particles = Particles(particle_id=[5], vx=[0.0], vy=[0.0], vz=[0.0], px=[2.0], py=[0.0], pz=[0.0], q=[1])
    metrics.add_event(Tracks(hit_ids=[[1, 2, 3, 4]]), truth, particles)
    empty_truth = HitTruth(hit_id=np.zeros(0, np.int64), particle_id=np.zeros(0, np.int64), weight=np.zeros(0))
    metrics.add_event(Tracks.empty(), empty_truth, particles.select([]))
    result = metrics.result()
    assert result["trackml_score"] == 1.0 and result["n_empty_events"] == 1 and result["n_trackml_events"] == 1


def test_binned_rates_in_pt_and_eta():
    from recotrig.edm import HitTruth, Particles, Tracks

    # particle 1: pT 0.7 (below min_pt: in the pT bins only), found; 2: pT 3, eta 1.2, found twice
    # (one duplicate); 3: pT 3, eta 0, lost: its only track holds 1 of its hits and 2 noise hits (fake)
    particles = Particles(
        particle_id=[1, 2, 3],
        vx=[0.0] * 3,
        vy=[0.0] * 3,
        vz=[0.0] * 3,
        px=[0.7, 3.0, 3.0],
        py=[0.0] * 3,
        pz=[0.0, 3.0 * np.sinh(1.2), 0.0],
        q=[1, -1, 1],
    )
    truth = HitTruth(hit_id=np.arange(1, 13), particle_id=[1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 0, 0], weight=[1.0] * 12)
    tracks = Tracks(hit_ids=[[1, 2, 3], [4, 5, 6], [6, 7], [8, 11, 12]])
    metrics = TrackingMetrics(min_hits=3)
    metrics.add_event(tracks, truth, particles)
    binned = metrics.result()["binned"]
    pt, eta = binned["pt"], binned["eta"]
    assert pt["n_reconstructable"][:4] == [0, 1, 0, 2] and pt["efficiency"][1] == 1.0 and pt["efficiency"][3] == 0.5
    assert eta["n_reconstructable"][:3] == [1, 0, 1] and eta["efficiency"][0] == 0.0 and eta["efficiency"][2] == 1.0
    # tracks by majority particle: [1,2,3] -> 1 (pT bin 1); [4,5,6], [6,7] -> 2; [8,11,12] -> 3, fake (1/3)
    assert pt["n_tracks"][:4] == [0, 1, 0, 3]
    assert pt["fake_rate"][3] == pytest.approx(1 / 3) and pt["duplicate_rate"][3] == pytest.approx(1 / 3)
    assert eta["n_tracks"][:3] == [2, 0, 2] and eta["fake_rate"][0] == 0.5 and math.isnan(eta["efficiency"][1])
