"""The L1 anomaly trigger: held-out physics figures of the shipped models (quantised and float),
the premixing check, and the L1 data generation throughput.

    python bench/bench_anomaly.py                 # everything (data sets from the cache, made if missing)
    python bench/bench_anomaly.py --only throughput

* ``figures``: for each shipped anomaly model (``anomaly-{vae,ae}-{zerobias-mu60,adc2021-mu20}``),
  on its data set's held-out test background and the four held-out signals: ROC AUC, signal
  efficiency at FPR 1e-5 (with the number of background crossings passing), for a zero-bias
  background at 1 and 10 kHz of 40 MHz; the quantised figures come from the exact fixed-point
  forward pass (``fixedpoint.Spec``), the float ones from the float model in ONNX Runtime.
* ``premixing``: the shipped zero-bias AE's score on the held-out million crossings, whose pile-up
  is drawn with replacement from a 200,000-interaction pool (each interaction reused ~300 times),
  against crossings whose every pile-up interaction is fresh (a 600,000-interaction pool of its
  own, each used once): Kolmogorov-Smirnov tests, and the fraction of fresh crossings above the
  reused sample's score quantiles (0.5 ... 1 - 2.5e-4, the 10 kHz point).
* ``throughput``: L1 objects only, premixed Poisson(60) pile-up, pools already made: crossings/s
  with 1 and with 2 processes (the ``simulate-l1`` generation path, no file writing), and with
  writing the ROOT store.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import stdout_to_stderr

MODELS = (
    "anomaly-vae-zerobias-mu60",
    "anomaly-ae-zerobias-mu60",
    "anomaly-vae-adc2021-mu20",
    "anomaly-ae-adc2021-mu20",
)


def figures(names: list[str]) -> dict:
    import onnxruntime as ort

    from recotrig.edm.trigger import SIGNALS
    from recotrig.models import registry
    from recotrig.models.anomaly.fixedpoint import Spec
    from recotrig.training.anomaly import dataset
    from recotrig.training.anomaly.train import evaluate, spec_scores

    out = {}
    for name in names:
        try:
            model = registry.load(name, family="anomaly")
        except registry.ModelError as err:
            out[name] = {"error": str(err)}
            continue
        data = model.card["training"]["config"]["dataset"]
        spec = Spec.load(model.onnx.parent / model.card["fixed_point"]["spec"])
        session = ort.InferenceSession(str(model.onnx), providers=["CPUExecutionProvider"])

        def onnx_scores(x):
            return np.concatenate(
                [
                    session.run(None, {"l1_inputs": np.asarray(x[i : i + 65536], np.float32)})[0]
                    for i in range(0, len(x), 65536)
                ]
            ).astype(np.float64)

        x_test, _meta = dataset.background(data, "test")
        signals = {p: dataset.signal(data, p)[0] for p in SIGNALS}
        rates = data.startswith("zerobias")
        q = evaluate(lambda x: spec_scores(spec, x), x_test, signals, rates=rates)
        f = evaluate(onnx_scores, x_test, signals, rates=rates)
        out[name] = {
            "dataset": data,
            "n_background_test": len(x_test),
            "signals": {
                p: {
                    "n_signal": q[p]["n_signal"],
                    "auc_quantised": q[p]["auc"],
                    "auc_float": f[p]["auc"],
                    "tpr_1e-5_quantised": q[p]["at_fpr_1e-5"]["efficiency"],
                    "tpr_1e-5_float": f[p]["at_fpr_1e-5"]["efficiency"],
                    "n_background_pass_1e-5": q[p]["at_fpr_1e-5"]["n_background_pass"],
                    "measured_1e-5": q[p]["at_fpr_1e-5"]["measured"],
                    "tpr_1e-3_quantised": q[p]["at_fpr_1e-3"]["efficiency"],
                    "tpr_1e-3_float": f[p]["at_fpr_1e-3"]["efficiency"],
                    "auc_ratio": q[p]["auc"] / f[p]["auc"],
                    "tpr_ratio": (
                        q[p]["at_fpr_1e-5"]["efficiency"] / f[p]["at_fpr_1e-5"]["efficiency"]
                        if q[p]["at_fpr_1e-5"]["measured"] and f[p]["at_fpr_1e-5"]["efficiency"] > 0
                        else None
                    ),
                    **(
                        {f"eff_{r}_kHz_quantised": q[p][f"at_{r}_kHz"]["efficiency"] for r in ("1", "10")}
                        if rates
                        else {}
                    ),
                }
                for p in SIGNALS
            },
        }
    return out


def premixing(n: int, fresh_pool: int) -> dict:
    from scipy.stats import ks_2samp

    from recotrig.models import registry
    from recotrig.models.anomaly.fixedpoint import Spec
    from recotrig.sim.premix import L1Dataset
    from recotrig.training.anomaly import dataset
    from recotrig.training.anomaly.train import spec_scores

    model = registry.load("anomaly-ae-zerobias-mu60", family="anomaly")
    spec = Spec.load(model.onnx.parent / model.card["fixed_point"]["spec"])
    reused, _meta = dataset.background("zerobias-mu60", "test")  # 1,000,000 crossings, 200,000-interaction pool
    fresh = L1Dataset("zerobias", 60.0, n, seed=42, pool_size=fresh_pool, pool_seed=4000, fresh_pileup=True)
    needed = fresh.pileup_needed()
    b = np.concatenate([batch.features() for _, batch in fresh.batches(jobs=2)])
    sa, sb = spec_scores(spec, reused), spec.score(b)
    rows = {}
    for q in (0.5, 0.9, 0.99, 0.999, 1 - 2.5e-4):
        threshold = float(np.quantile(sa, q))
        k = int(np.count_nonzero(sb > threshold))
        rows[f"{q:.6g}"] = {
            "reused": float(np.mean(sa > threshold)),
            "fresh": k / len(sb),
            "fresh_binomial_sigma": float(np.sqrt(max(k, 1)) / len(sb)),
        }
    sub = sa[:: max(1, len(sa) // len(sb))][: len(sb)]
    return {
        "reused_crossings": len(sa),
        "reused_pool_size": 200_000,
        "fresh_crossings": n,
        "fresh_interactions_used": needed,
        "ks_pvalue_score": float(ks_2samp(sub, sb).pvalue),
        "ks_pvalue_met": float(ks_2samp(reused[:: max(1, len(sa) // len(sb))][: len(sb), 0], b[:, 0]).pvalue),
        "fraction_above_reused_quantiles": rows,
        "mean_jets_reused_fresh": [
            float((reused[:100_000, 27::3] > 0).sum(1).mean()),
            float((b[:, 27::3] > 0).sum(1).mean()),
        ],
    }


def throughput(n: int) -> dict:
    from recotrig.sequences.simulate_l1_cmd import simulate_l1
    from recotrig.sim.premix import L1Dataset

    out = {}
    for jobs in (1, 2):
        ds = L1Dataset("zerobias", 60.0, n, seed=51)
        ds.pool.load()
        t = time.perf_counter()
        count = sum(b.n_events for _, b in ds.batches(jobs=jobs))
        out[f"crossings_per_s_{jobs}_proc"] = round(count / (time.perf_counter() - t), 1)
    with tempfile.TemporaryDirectory() as tmp:
        summary = simulate_l1(
            os.path.join(tmp, "l1.root"), process="zerobias", mu=60.0, events=n, seed=52, jobs=2, progress=False
        )
    out["with_root_writing_crossings_per_s_2_proc"] = summary["crossings_per_s"]
    out["crossings"] = n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("figures", "premixing", "throughput"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--premix-crossings", type=int, default=9900, help="fresh crossings for the premixing check")
    parser.add_argument("--fresh-pool", type=int, default=600_000, help="minimum-bias interactions for them")
    parser.add_argument("--throughput-crossings", type=int, default=100_000)
    args = parser.parse_args()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    with stdout_to_stderr():
        if args.only in (None, "throughput"):
            result["throughput"] = throughput(args.throughput_crossings)
        if args.only in (None, "figures"):
            result["figures"] = figures(args.models.split(","))
        if args.only in (None, "premixing"):
            result["premixing"] = premixing(args.premix_crossings, args.fresh_pool)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
