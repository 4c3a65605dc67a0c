"""TrackFormerFinder (EncCla, EncReg) against ActsCKF on the same held-out pixel hits. Prints JSON.

Three settings, each one `recotrig run` in one process (one core) on events never used in
training or tuning:

- ``10-50``: `recotrig run trackformer` (30 random particles per crossing, the 10-50 models) on
  the held-out test store of the shipped models (simulated by `recotrig train trackformer` with
  seed 303; remade here if absent);
- ``200-500``: `recotrig run trackformer_dense` (300 random particles, the sectored 200-500
  models) on the same store;
- ``mu60``: the same sequence on the full pixel content of the bundled mu = 60 ttbar sample
  (``--HitReader.tracks_per_event 0``), with ``MU60_SECTORS`` phi sectors;
- ``mu60_hybrid``: `recotrig run trackformer_hybrid` on that sample (ActsCKF from 0.2 GeV seeds
  first, the models on the hits its tracks leave), and ``200-500_hybrid``: the ``200-500`` setting
  so (``HYBRID`` options). A hybrid finder's time is its own; ActsCKF's comes before it.
- ``200-500_fast`` and ``200-500_fast_one_pass``: the ``200-500`` setting with EncReg's model
  replaced by the fast one (``FAST``: 2 layers, 2 heads), in its card's passes and in one pass.

Per setting and finder: the TrackML score and ACTS-style rates, and ms/event of each finder
against ActsCKF (seeding + CKF + ambiguity resolution), from the run's own outputs. For the
EncReg models, the finder's time split into the first pass's encoder (ONNX Runtime, one call per
window), its track building (HDBSCAN per window, the sectors' merge) and helix refinement
(``helices.refine``), and the card's later passes (each an encoder run and track building on the
hits left), on the same 30- and 300-track events.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import stdout_to_stderr

from recotrig.io.hit_reader import HitReader
from recotrig.models import registry
from recotrig.models.runtime import Session
from recotrig.models.trackformer.inference import Finder, params_of, warm_up
from recotrig.sequences.samples import SAMPLE_MU60
from recotrig.sequences.trackformer_hybrid import PRIOR_PT, SECTORS
from recotrig.training.trackformer.train import _cache, simulated_stores

MU60_SECTORS = SECTORS
FAST = "trackformer-encreg-200-500-fast"
#: trackformer_dense run as trackformer_hybrid runs (sequences/trackformer_hybrid.py)
HYBRID = (
    "--ActsCKF.seed_min_pt",
    str(PRIOR_PT),
    "--ActsCKF.track_min_pt",
    str(PRIOR_PT),
    "--TrackFormerEncCla.prior",
    "tracks_ckf",
    "--TrackFormerEncReg.prior",
    "tracks_ckf",
)


def run(sequence: str, store: str, *options: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="recotrig-bench-tf-"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recotrig.sequences.cli",
            "run",
            sequence,
            "--input",
            store,
            "-o",
            str(out),
            "--no-progress",
            *options,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    timing = json.loads((out / "timing.json").read_text())["timing"]
    ms = {r["algorithm"]: r["mean_ms"] for r in timing}
    pick = ("efficiency", "fake", "duplicate", "trackml_score")
    finders = {r["algorithm"]: {k: r.get(k) for k in pick} for r in rows}
    ml = [name for name in ms if name.startswith("TrackFormer")]
    return {
        "sequence": sequence,
        "store": Path(store).name,
        "options": list(options),
        "events": timing[0]["calls"],
        "finders": finders,
        "ms_per_event": {name: ms[name] for name in [*ml, "ActsCKF"]},
        "ckf_over_trackformer_time": {name: ms["ActsCKF"] / ms[name] for name in ml},
    }


def breakdown(store: str, model: str = "trackformer-encreg-200-500", tracks: int = 300) -> dict:
    """ms/event of the encoder, of the network's track building and of what the helix refinement adds
    (the finder's full track building less the network's alone), one core."""
    loaded = registry.load(model, family="trackformer")
    finder = Finder(Session(loaded.onnx, threads=1), loaded.card)
    params = params_of(loaded.card)
    reader = HitReader(input=store, volumes=[7, 8, 9], tracks_per_event=tracks)
    reader.prepare(0, reader.n_events())
    warm_up()  # the compiled loops loaded, as TrackFormerFinder.initialize does
    one = {**params, "passes": []}
    encoder = building = helix = passes = 0.0
    for entry in range(reader.n_events()):
        hits = reader.read(entry)[0]
        x = np.stack([np.asarray(hits[c], np.float32) for c in "xyz"], axis=1)
        t0 = time.perf_counter()
        prediction = finder.predict(x)
        t1 = time.perf_counter()
        finder.assemble(x, prediction, {**one, "helix": None})  # the network's candidates alone
        t2 = time.perf_counter()
        finder.assemble(x, prediction, one)  # one pass, refinement included
        t3 = time.perf_counter()
        finder.assemble(x, prediction, params)  # the finder's own path, its later passes included
        t4 = time.perf_counter()
        encoder += t1 - t0
        building += t2 - t1
        helix += (t3 - t2) - (t2 - t1)  # what the refinement adds to the track building
        passes += (t4 - t3) - (t3 - t2)  # what the later passes add (their encoder and track building)
    n = reader.n_events()
    return {
        "model": model,
        "tracks_per_event": tracks,
        "events": n,
        "passes": params["passes"],
        "encoder_ms": 1e3 * encoder / n,
        "track_building_ms": 1e3 * building / n,
        "helix_refinement_ms": 1e3 * helix / n,
        "later_passes_ms": 1e3 * passes / n,
    }


def main() -> None:
    with stdout_to_stderr():  # what the libraries print in-process (simulation, the breakdown) stays off the JSON
        store = simulated_stores(_cache() / "stores", splits=("test",))["test"]
        results = {
            "benchmark": "trackformer vs ckf",
            "10-50": run("trackformer", store),
            "200-500": run("trackformer_dense", store),
            "10-50_breakdown": breakdown(store, "trackformer-encreg-10-50", 30),
            "200-500_breakdown": breakdown(store),
            "mu60": run(
                "trackformer_dense",
                str(SAMPLE_MU60),
                "--HitReader.tracks_per_event",
                "0",
                "--TrackFormerEncReg.sectors",
                str(MU60_SECTORS),
                "--TrackFormerEncCla.sectors",
                str(MU60_SECTORS),
            ),
            "200-500_hybrid": run("trackformer_dense", store, *HYBRID),
            "200-500_fast": run("trackformer_dense", store, "--TrackFormerEncReg.model", FAST),
            "200-500_fast_one_pass": run(
                "trackformer_dense", store, "--TrackFormerEncReg.model", FAST, "--TrackFormerEncReg.passes", "false"
            ),
            "200-500_fast_breakdown": breakdown(store, FAST),
            "mu60_hybrid": run("trackformer_hybrid", str(SAMPLE_MU60)),
        }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
