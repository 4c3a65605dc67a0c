"""TrackFormerFinder (EncReg) against ActsCKF on the same held-out pixel hits. Prints JSON.

Runs `recotrig run trackformer` on the held-out test store of the shipped model (simulated by
`recotrig train trackformer` with seed 303, never used in training or tuning; remade here if
absent) with 30 random particles per crossing, one process, and reports from its outputs: the
TrackML score and ACTS-style rates of each finder, and ms/event of TrackFormerFinder against
ActsCKF (seeding + CKF + ambiguity resolution).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from recotrig.models.trackformer.train import _cache, simulated_stores


def main() -> None:
    store = simulated_stores(_cache() / "stores")["test"]
    out = Path(tempfile.mkdtemp(prefix="recotrig-bench-tf-"))
    done = subprocess.run([sys.executable, "-m", "recotrig.sequences.cli", "run", "trackformer", "--input", store,
                           "-o", str(out), "--no-progress"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    rows = {r["algorithm"]: r for r in json.loads((out / "comparison.json").read_text())["rows"]}
    timing = json.loads((out / "timing.json").read_text())
    ms = {r["algorithm"]: r["mean_ms"] for r in timing["timing"]}
    pick = ("efficiency", "fake", "duplicate", "trackml_score")
    print(json.dumps({
        "benchmark": "trackformer vs ckf",
        "store": Path(store).name,
        "events": timing["timing"][0]["calls"],
        "tracks_per_event": 30,
        "finders": {name: {k: row.get(k) for k in pick} for name, row in rows.items()},
        "ms_per_event": {"TrackFormerEncReg": ms["TrackFormerEncReg"], "ActsCKF": ms["ActsCKF"]},
        "ckf_over_trackformer_time": ms["ActsCKF"] / ms["TrackFormerEncReg"],
    }, indent=1))


if __name__ == "__main__":
    main()
