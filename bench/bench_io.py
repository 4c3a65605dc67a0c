"""Read throughput of the event stores (TrackML CSV and ROOT) on a synthetic store.

Prints one JSON object: hits/s reading ``hits`` alone and ``hits+truth+particles`` for each
format (and each ROOT compression tried), write times, file sizes and the ROOT/CSV ratio.

    python -m recotrig.bench.bench_io [--events 4] [--hits 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import best_time

from recotrig.edm import Hits, HitTruth, Particles, TruthVertices
from recotrig.io.store import open_store, write_store


def synthetic_event(rng: np.random.Generator, n_hits: int) -> dict[str, Any]:
    """One event shaped like a digitized μ≈200 crossing: hits with ACTS columns, truth, particles."""
    n_particles = max(n_hits // 10, 1)
    r = rng.uniform(30, 1000, n_hits)
    phi = rng.uniform(-np.pi, np.pi, n_hits)
    hits = Hits(
        hit_id=np.arange(1, n_hits + 1),
        x=r * np.cos(phi),
        y=r * np.sin(phi),
        z=rng.uniform(-3000, 3000, n_hits),
        t=rng.normal(0, 0.2, n_hits),
        volume_id=rng.integers(7, 18, n_hits),
        layer_id=rng.integers(2, 14, n_hits) * 2,
        module_id=rng.integers(1, 3000, n_hits),
        geometry_id=rng.integers(0, 2**62, n_hits).astype(np.uint64),
        loc0=rng.uniform(-20, 20, n_hits),
        loc1=rng.uniform(-40, 40, n_hits),
        var_loc0=np.full(n_hits, 0.05**2),
        var_loc1=np.full(n_hits, 0.05**2),
    )
    particle_ids = rng.integers(1, 2**52, n_particles)
    truth = HitTruth(
        hit_id=hits.hit_id,
        particle_id=rng.choice(particle_ids, n_hits),
        tx=hits.x,
        ty=hits.y,
        tz=hits.z,
        tpx=rng.normal(0, 1, n_hits),
        tpy=rng.normal(0, 1, n_hits),
        tpz=rng.normal(0, 2, n_hits),
        weight=rng.random(n_hits) * 1e-5,
    )
    particles = Particles(
        particle_id=particle_ids,
        vx=rng.normal(0, 0.01, n_particles),
        vy=rng.normal(0, 0.01, n_particles),
        vz=rng.normal(0, 50, n_particles),
        px=rng.normal(0, 1, n_particles),
        py=rng.normal(0, 1, n_particles),
        pz=rng.normal(0, 2, n_particles),
        q=rng.choice([-1, 1], n_particles),
        vt=rng.normal(0, 0.2, n_particles),
        nhits=rng.integers(0, 20, n_particles),
        pdg=rng.choice([211, -211, 321, 2212], n_particles),
        vertex_id=rng.integers(1, 200, n_particles),
    )
    vertices = TruthVertices(vertex_id=np.arange(1, 201), x=np.zeros(200), y=np.zeros(200), z=rng.normal(0, 50, 200))
    return {"hits": hits, "truth": truth, "particles": particles, "vertices": vertices}


def measure(path: Path, n_hits_total: int, repeat: int) -> dict[str, Any]:
    store = open_store(path)
    out: dict[str, Any] = {}
    for label, names in (("hits", ["hits"]), ("hits_truth_particles", ["hits", "truth", "particles"])):
        seconds = best_time(lambda names=names: store.read(0, store.n_events, collections=names), repeat)
        out[label] = {"seconds": round(seconds, 4), "hits_per_s": round(n_hits_total / seconds)}
    return out


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4)
    parser.add_argument("--hits", type=int, default=100_000, help="hits per event")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--compressions", default="lz4,zstd,none", help="ROOT compressions to try (the first is compared with CSV)"
    )
    args = parser.parse_args(argv)

    rng = np.random.default_rng(42)
    events = [synthetic_event(rng, args.hits) for _ in range(args.events)]
    total = args.events * args.hits
    result: dict[str, Any] = {"events": args.events, "hits_per_event": args.hits, "formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        variants = [("trackml", Path(tmp) / "csv", {}), ("trackml.gz", Path(tmp) / "csvgz", {"compress": True})]
        variants += [
            (f"root.{c}", Path(tmp) / f"{c}.root", {"compression": None if c == "none" else c})
            for c in args.compressions.split(",")
        ]
        for label, path, options in variants:
            fmt = label.split(".")[0]
            start = time.perf_counter()
            write_store(path, events, format=fmt, **options)
            write_s = time.perf_counter() - start
            entry = {"write_s": round(write_s, 3), "bytes": size_of(path), **measure(path, total, args.repeat)}
            result["formats"][label] = entry
    formats = result["formats"]
    root_default = f"root.{args.compressions.split(',')[0]}"
    result["root_over_csv"] = {
        key: round(formats[root_default][key]["hits_per_s"] / formats["trackml"][key]["hits_per_s"], 2)
        for key in ("hits", "hits_truth_particles")
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
