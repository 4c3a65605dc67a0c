"""HitReader: hits, and where the store has them particles, truth and truth vertices, per event.

Reads TrackML CSV directories and ROOT files alike (format detected, or forced with ``format``),
in chunks of entries (``io.fileset_reader``), so ``-n/--skip`` map to entry ranges and a large file
streams.

Every event is checked as it is read (``io.validate``): finite, physically bounded numbers,
distinct ids, truth consistent with hits and particles; a bad event raises ``StoreError`` naming
the file, event, column and row (skipped and counted under ``--error-policy skip``).

Selections, applied in this order, all keeping hits and truth consistent:
- ``volumes``: keep hits of these detector volumes only (empty: all);
- ``min_pt``: keep hits of particles with pT >= min_pt GeV (truth-based studies; needs truth);
- ``drop_noise``: drop hits of particle 0;
- ``tracks_per_event``: keep all hits of N particles chosen at random among those with hits
  (seeded by ``seed`` and the event id, so the choice is the same in every process) — the
  TrackFormers "10–50" / "200–500 tracks per event" reductions. Noise is dropped then.

TrackML weights: the store's ``weight`` column is carried as it is. Where the store has none and
particles are present, the official TrackML weights are computed (``edm.truth.trackml_weights``).

The reader declares what its store holds (``provides``): on a hits-only store it gives no
particles, truth or truth vertices, and a consumer of those fails the pre-run check.
After a selection the weights of the kept hits are rescaled to sum to 1, so a perfect
reconstruction of the selected event still scores 1.
"""

from __future__ import annotations

import numpy as np

from recotrig.edm import Hits, HitTruth, Particles, TruthVertices
from recotrig.edm.truth import hit_particles, trackml_weights
from recotrig.framework import Option
from recotrig.io.errors import StoreError
from recotrig.io.fileset_reader import FilesetReader
from recotrig.io.validate import validate_event


class HitReader(FilesetReader):
    """Reads Hits (+ Particles, HitTruth, TruthVertices where the store has them)."""

    outputs = ("hits", "particles", "truth", "truth_vertices")
    input = Option(
        "", "event store(s): a TrackML CSV directory or ROOT file, a glob, a comma list or a .txt list", role="input"
    )
    format = Option(
        "auto", "store format (auto: detected; ROOT files in ACTS layouts too)", choices=("auto", "trackml", "root")
    )
    volumes = Option([], "keep hits of these volume ids only (comma list; empty: all)", type=list, item=int, low=0)
    min_pt = Option(0.0, "keep hits of particles with pT >= this [GeV] (0: all)", low=0.0)
    drop_noise = Option(False, "drop noise hits (particle 0)")
    tracks_per_event = Option(0, "keep the hits of this many random particles (0: all)", low=0)
    seed = Option(7, "seed of the particle subsampling")
    compute_weights = Option(True, "compute official TrackML weights when the store has none")

    SOURCES = {"hits": "hits", "particles": "particles", "truth": "truth", "truth_vertices": "vertices"}
    REQUIRED = ("hits", "hits")

    def _format(self) -> str | None:
        return None if self.format == "auto" else self.format

    def read(self, entry: int) -> tuple[Hits, Particles | None, HitTruth | None, TruthVertices | None]:
        event, path = self._event(entry)
        hits, particles, truth = event["hits"], event.get("particles"), event.get("truth")
        vertices = event.get("vertices")
        event_id = self.event_id(entry)
        validate_event(event, path=path, event_id=event_id)
        if truth is not None and "weight" not in truth and particles is not None and self.compute_weights:
            try:
                truth = truth.with_columns(weight=trackml_weights(particles, truth, hits))
            except ValueError as err:
                raise StoreError(str(err), path=path, event=event_id) from None
        hits, particles, truth = self._select(hits, particles, truth, event_id)
        return hits, particles, truth, vertices

    # -- selections ---------------------------------------------------------------------------------
    def _select(self, hits: Hits, particles: Particles | None, truth: HitTruth | None, event_id: int):
        keep = np.ones(len(hits), bool)
        if self.volumes:
            if "volume_id" not in hits:
                raise StoreError(
                    "volume selection asked but hits have no volume_id column",
                    path=self.input,
                    event=event_id,
                    column="volume_id",
                )
            keep &= np.isin(hits.volume_id, np.asarray(self.volumes, np.int32))
            if len(hits) and not keep.any():
                raise StoreError(
                    f"the volume selection {self.volumes} keeps no hit; this event's hits are in volumes "
                    f"{np.unique(hits.volume_id).tolist()}",
                    path=self.input,
                    event=event_id,
                    column="volume_id",
                )
        needs_truth = self.min_pt > 0 or self.drop_noise or self.tracks_per_event > 0
        if needs_truth and truth is None:
            raise StoreError(
                "a truth-based selection (min_pt, drop_noise, tracks_per_event) needs truth, and the store has none",
                path=self.input,
                event=event_id,
            )
        if not needs_truth and not self.volumes:
            return hits, particles, truth
        pid = self._hit_particles(hits, truth, event_id) if truth is not None else None
        if self.min_pt > 0:
            if particles is None:
                raise StoreError("min_pt needs particles", path=self.input, event=event_id)
            fast = particles.particle_id[np.hypot(particles.px, particles.py) >= self.min_pt]
            keep &= np.isin(pid, fast) | (pid == 0)
        if self.drop_noise or self.tracks_per_event > 0:
            keep &= pid != 0
        if self.tracks_per_event > 0:
            candidates = np.unique(pid[keep])
            rng = np.random.default_rng([self.seed, event_id])
            n = min(self.tracks_per_event, len(candidates))
            chosen = rng.choice(candidates, size=n, replace=False) if n else candidates[:0]
            keep &= np.isin(pid, chosen)
        hits = hits.select(keep)
        if truth is not None:
            truth = truth.select(np.isin(truth.hit_id, hits.hit_id))
            if "weight" in truth and len(truth):
                total = truth.weight.sum()
                truth = truth.with_columns(weight=truth.weight / total if total > 0 else truth.weight)
            if particles is not None:
                particles = particles.select(np.isin(particles.particle_id, truth.particle_id))
        return hits, particles, truth

    def _hit_particles(self, hits: Hits, truth: HitTruth, event_id: int) -> np.ndarray:
        """Particle id of each hit, in hits order."""
        try:
            return hit_particles(hits, truth)
        except ValueError as err:
            raise StoreError(str(err), path=self.input, event=event_id, column="hit_id") from None
