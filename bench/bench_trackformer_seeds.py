"""TrackFormer models scored on events of two further seeds, never used in training or tuning.
Prints JSON.

    python bench/bench_trackformer_seeds.py                      # the shipped models
    python bench/bench_trackformer_seeds.py MODEL [MODEL ...]    # shipped names or .onnx paths

100 mu = 20 crossings of each of seeds 404 and 505 are simulated once into the cache
(``recotrig.models.registry.cache_dir("bench") / "trackformer"``). Each model reduces them as its
card says (its data set, draws and reduction seed, as for its held-out events) and is scored with
its own card's track building (``training.trackformer.train.evaluate``: the mean TrackML score).
"""

from __future__ import annotations

import json
import sys

from _common import stdout_to_stderr

from recotrig.models import registry
from recotrig.models.trackformer.inference import warm_up
from recotrig.sim.store import simulate
from recotrig.training.trackformer import train

SEEDS = (404, 505)
CROSSINGS = 100
SHIPPED = [f"trackformer-{k}-{d}" for d in ("10-50", "200-500") for k in ("enccla", "encreg")] + [
    "trackformer-encreg-200-500-fast"
]


def main(models: list[str]) -> None:
    folder = registry.cache_dir("bench") / "trackformer"
    folder.mkdir(parents=True, exist_ok=True)
    results = {"benchmark": "trackformer on further seeds", "crossings": CROSSINGS, "models": {}}
    with stdout_to_stderr():
        warm_up()
        stores = {}
        for seed in SEEDS:
            stores[seed] = folder / f"test_mu20_seed{seed}.root"
            if not stores[seed].exists():
                simulate(stores[seed], events=CROSSINGS, mu=20.0, seed=seed, jobs=1, progress=False)
        for name in models:
            model = registry.load(name, family="trackformer")
            card = model.card
            scores = {}
            for seed, store in stores.items():
                samples = train._datasets(
                    {"test": str(store)},
                    data=card["data"]["dataset"],
                    draws=int(card["data"]["draws_per_crossing"]),
                    seed=int(card["seed"]),
                    max_events=None,
                    cache=folder / "datasets",
                )["test"]
                scores[seed] = {"trackml_score": train.evaluate(model.onnx, samples, card), "events": len(samples)}
            results["models"][name] = {"held_out_card": card["held_out"]["trackml_score"], "seeds": scores}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or SHIPPED)
