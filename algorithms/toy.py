"""Toy algorithms: a field-free cylinder tracker, enough to exercise the engine end to end.

``ToyReader`` makes events (straight tracks from vertices spread along the beam line, hits on
cylindrical layers with Gaussian smearing) from a seed and the entry number alone, so any entry can
be made in any process. ``TruthTracker`` groups hits by truth particle and fits a line in (r, z);
``ZHistogramVertexer`` finds vertices as peaks of the track z0 histogram; ``SummaryWriter`` writes a
per-event table of counts as JSON; ``Burn`` spends a fixed amount of CPU (for benchmarks).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from recotrig.edm import EventInfo, Hits, HitTruth, Particles, Tracks, TruthVertices, Vertices
from recotrig.framework import Algorithm, Collection, Many, Option, Reader, Writer
from recotrig.framework.files import write_json
from recotrig.framework.identity import EventKey
from recotrig.framework.lookup import index_of

LAYER_RADII = (32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0, 820.0, 1020.0)


class ToyReader(Reader):
    """Straight tracks from Gaussian-spread vertices through cylindrical layers (no field)."""

    outputs = ("hits", "particles", "truth", "truth_vertices")
    events = Option(100, "number of events the toy store holds", low=0)
    vertices = Option(5, "interactions per event", low=1)
    tracks_per_vertex = Option(20, "charged particles per interaction", low=0)
    sigma_z = Option(45.0, "beam spot length [mm]", low=0.0)
    resolution = Option(0.05, "hit smearing [mm]", low=0.0, high=1000.0)
    seed = Option(1, "random seed; each entry is seeded with (seed, entry)")

    def n_events(self) -> int:
        return self.events

    def read(self, entry: int) -> tuple[Hits, Particles, HitTruth, TruthVertices]:
        rng = np.random.default_rng([self.seed, entry])
        nv = max(1, rng.poisson(self.vertices))
        vz = rng.normal(0.0, self.sigma_z, nv)
        ntrk = rng.poisson(self.tracks_per_vertex, nv) + 1
        vertex = np.repeat(np.arange(nv), ntrk)
        n = len(vertex)
        phi = rng.uniform(-np.pi, np.pi, n)
        eta = rng.uniform(-2.5, 2.5, n)
        pt = 0.5 + rng.exponential(1.5, n)
        radii = np.asarray(LAYER_RADII)
        z = vz[vertex][:, None] + radii[None, :] * np.sinh(eta)[:, None]
        inside = np.abs(z) < 1500.0
        part, layer = np.nonzero(inside)
        r = radii[layer]
        hx = r * np.cos(phi[part]) + rng.normal(0, self.resolution, len(r))
        hy = r * np.sin(phi[part]) + rng.normal(0, self.resolution, len(r))
        hz = z[part, layer] + rng.normal(0, self.resolution, len(r))
        hit_id = np.arange(1, len(r) + 1)
        hits = Hits(hit_id=hit_id, x=hx, y=hy, z=hz, volume_id=np.full(len(r), 8), layer_id=2 * (layer + 1))
        particles = Particles(
            particle_id=np.arange(1, n + 1),
            vx=np.zeros(n),
            vy=np.zeros(n),
            vz=vz[vertex],
            px=pt * np.cos(phi),
            py=pt * np.sin(phi),
            pz=pt * np.sinh(eta),
            q=np.where(rng.random(n) < 0.5, -1, 1),
            nhits=inside.sum(axis=1),
            vertex_id=vertex + 1,
        )
        truth = HitTruth(hit_id=hit_id, particle_id=part + 1)
        truth_vertices = TruthVertices(
            vertex_id=np.arange(1, nv + 1), x=np.zeros(nv), y=np.zeros(nv), z=vz, n_charged=ntrk
        )
        return hits, particles, truth, truth_vertices


class TruthTracker(Algorithm):
    """Groups hits by their truth particle and fits z = z0 + r cot(theta) to each group."""

    outputs = ("tracks",)
    min_hits = Option(3, "tracks with fewer hits are dropped", low=1)

    def execute(self, hits: Hits, truth: HitTruth) -> Tracks:
        order = np.argsort(truth.particle_id, kind="stable")
        pid = truth.particle_id[order]
        starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
        counts = np.diff(np.r_[starts, len(pid)])
        keep = (counts >= self.min_hits) & (pid[starts] != 0)
        rows_all = index_of(hits.hit_id, truth.hit_id[order])
        in_kept = np.repeat(keep, counts)
        rows = rows_all[in_kept]
        n_hits = counts[keep]
        first = np.r_[0, np.cumsum(n_hits)[:-1]]
        r, z = np.hypot(hits.x[rows], hits.y[rows]), hits.z[rows]

        def group_mean(values):
            return np.add.reduceat(values, first) / n_hits if len(values) else np.zeros(0)

        mr, mz = group_mean(r), group_mean(z)
        var_r = group_mean(r * r) - mr * mr
        slope = np.where(var_r > 0, (group_mean(r * z) - mr * mz) / np.where(var_r > 0, var_r, 1.0), 0.0)
        z0 = mz - slope * mr
        theta = np.arctan2(1.0, slope)
        phi = np.arctan2(group_mean(hits.y[rows]), group_mean(hits.x[rows]))
        hit_ids = ak.unflatten(truth.hit_id[order][in_kept], n_hits)
        n = len(z0)
        return Tracks(hit_ids=hit_ids, z0=z0, theta=theta, phi=phi, d0=np.zeros(n))


class ZHistogramVertexer(Algorithm):
    """Vertices as local maxima of the histogram of track z0 (a deliberately simple baseline)."""

    outputs = ("vertices",)
    bin_width = Option(1.0, "z bin width [mm]", low=1e-6)
    min_tracks = Option(3, "minimum tracks in a peak bin and its neighbours", low=1)

    def execute(self, tracks: Tracks) -> Vertices:
        z0 = np.asarray(tracks.z0)
        if len(z0) == 0:
            return Vertices(x=[], y=[], z=[], ntracks=[])
        edges = np.arange(z0.min() - 2 * self.bin_width, z0.max() + 3 * self.bin_width, self.bin_width)
        counts, _ = np.histogram(z0, edges)
        summed = np.convolve(counts, [1, 1, 1], mode="same")
        peaks = np.flatnonzero(
            (summed >= self.min_tracks) & (summed >= np.r_[0, summed[:-1]]) & (summed > np.r_[summed[1:], 0])
        )
        centres = 0.5 * (edges[:-1] + edges[1:])
        z, ntracks = [], []
        for p in peaks:
            near = np.abs(z0 - centres[p]) < 1.5 * self.bin_width
            z.append(z0[near].mean())
            ntracks.append(int(near.sum()))
        n = len(z)
        return Vertices(x=np.zeros(n), y=np.zeros(n), z=z, ntracks=ntracks)


class Burn(Algorithm):
    """Spends CPU: ``work`` rounds of a small dense computation per event (for benchmarks)."""

    outputs = ("burned",)
    work = Option(200, "rounds of work per event", low=0)

    def execute(self, event: EventInfo) -> EventInfo:
        x = 1.0 + event.entry[0] * 1e-9
        for _ in range(self.work * 1000):
            x = (x * 1.0000001) % 7.0
        return event


class SummaryWriter(Writer):
    """Writes ``summary.json``: one row per event (run and event id) with the sizes of the chosen collections."""

    path = Option("recotrig-out/summary.json", "output file", role="output")

    def initialize(self) -> None:
        self._rows: list[dict] = []

    def execute(self, event: EventInfo, collections: Many[Collection] | None = ("hits", "tracks", "vertices")) -> None:
        key = EventKey.of(event)
        row = {"run_number": key.run, "event_id": key.event}
        row.update({k: (len(v) if v is not None else None) for k, v in collections.items()})
        self._rows.append(row)

    def finalize(self) -> None:
        write_json(self.path, {"events": self._rows})

    def discard(self) -> None:
        self._rows = []
