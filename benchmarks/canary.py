"""Benchmark: the canary policy's error rates, simulated, and the simulator's speed.

    .venv/bin/python benchmarks/canary.py [--rollouts 200] [--repeats 3]

Runs :func:`lifecycle.canary.simulate_kinds` (the kit's default plan and gates, shadow first) with
``--rollouts`` rollouts per failure kind and checks the issue's figures: a good challenger rolled back
in at most 5% of rollouts; a never-flagging canary caught in at least 99% by the end of shadow; flags
10x as often and 4x the error rate each caught in at least 99% before the 25% step ends; a median
exposure (answers users got from the bad model) of at most 1% of the rollout's requests for those
three. The subtle kinds (latency +50%, precision 5 points lower) are reported as measured. Every rate
comes with its exact 95% interval over the rollouts. The same policy without a shadow step is run
alongside, at the same traffic and at ten times the traffic per step.

Speed: all six kinds at ``--rollouts`` each (target <= 10 s), and one kind at 300 rollouts (more
than the playground's 200 per setting: <= 0.3 s), best of ``--repeats``, in wall and CPU seconds, with the load average
(other users' work on a shared machine stretches the wall time, not the CPU time). Writes
benchmarks/results/canary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "canary.json"


def interval(rate: float, n: int) -> list[float]:
    """The exact (Clopper–Pearson) 95% interval of a share ``rate`` of ``n`` rollouts."""
    from scipy import stats

    k = round(rate * n)
    low = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return [round(low, 4), round(high, 4)]


def best_of(repeats: int, work) -> tuple[float, float, object]:
    """Best wall and CPU seconds of ``repeats`` runs of ``work`` (CPU time is what a busy machine's other
    users cannot take away: on an idle machine the two agree), and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy
    import scipy

    from lifecycle.canary import simulate_kinds, simulate_policy

    load_before = os.getloadavg()[0]
    all_kinds_seconds, all_kinds_cpu, table = best_of(args.repeats, lambda: simulate_kinds(args.rollouts, seed=0))
    one_kind_seconds, one_kind_cpu, _ = best_of(args.repeats, lambda: simulate_policy("good", rollouts=300, seed=0))
    no_shadow = simulate_kinds(args.rollouts, seed=0, steps=(5, 25, 50, 100))
    no_shadow_10x = simulate_kinds(args.rollouts, seed=0, steps=(5, 25, 50, 100), max_requests=40_000,
                                   look_every=2_000)
    n = args.rollouts
    # Lesson 07's case (a retrained model flagging three times as often), and the good challenger over
    # five times the rollouts, for a tighter interval on the false-rollback rate.
    thrice = simulate_policy("flags_10x", size=3.0, rollouts=n, seed=0)
    good_many = simulate_policy("good", rollouts=5 * n, seed=1)
    thrice_promoted = float((thrice["outcome"] == "promoted").mean())
    good_many_rolled_back = float((good_many["outcome"] == "rolled back").mean())

    def rows(frame):
        return {kind: {"rolled_back": float(r["rolled_back"]), "rolled_back_95": interval(float(r["rolled_back"]), n),
                       "by_test": float(r["by_test"]), "by_end_of_shadow": float(r["by_end_of_shadow"]),
                       "before_25_ends": float(r["before_25_ends"]),
                       "median_canary_answers": float(r["median_canary_answers"]),
                       "median_exposure": float(r["median_exposure"]),
                       "median_exposure_share": round(float(r["median_exposure_share"]), 5)}
                for kind, r in frame.iterrows()}

    loud = ["never_flags", "flags_10x", "errors_4x"]
    checks = {
        "false_rollback_at_most_5pct": table.loc["good", "rolled_back"] <= 0.05,
        "flags_3x_promoted_at_most_5pct": thrice_promoted <= 0.05,
        "never_flags_by_end_of_shadow_at_least_99pct": table.loc["never_flags", "by_end_of_shadow"] >= 0.99,
        "flags_10x_before_25_ends_at_least_99pct": table.loc["flags_10x", "before_25_ends"] >= 0.99,
        "errors_4x_before_25_ends_at_least_99pct": table.loc["errors_4x", "before_25_ends"] >= 0.99,
        "median_exposure_at_most_1pct": bool((table.loc[loud, "median_exposure_share"] <= 0.01).all()),
        "all_kinds_within_10s": all_kinds_seconds <= 10.0,
        "one_kind_300_rollouts_within_0.3s": one_kind_seconds <= 0.3,
        "one_kind_300_rollouts_within_0.3s_of_cpu": one_kind_cpu <= 0.3,
    }
    result = {
        "rollouts_per_kind": n,
        "policy": {"steps": ["shadow", 5, 25, 50, 100], "min_requests": 400, "look_every": 200,
                   "max_requests": 4_000, "shadow_max_requests": 8_000, "false_rollback_budget": 0.05},
        "shadow_first": rows(table),
        "no_shadow_same_traffic": rows(no_shadow),
        "no_shadow_10x_traffic": rows(no_shadow_10x),
        "flags_3x_promoted": thrice_promoted, "flags_3x_promoted_95": interval(thrice_promoted, n),
        "good_rolled_back_over_5x_rollouts": good_many_rolled_back,
        "good_rolled_back_over_5x_rollouts_95": interval(good_many_rolled_back, 5 * n),
        "simulate_all_kinds_seconds_best": round(all_kinds_seconds, 3),
        "simulate_all_kinds_cpu_seconds_best": round(all_kinds_cpu, 3),
        "simulate_one_kind_300_rollouts_seconds_best": round(one_kind_seconds, 3),
        "simulate_one_kind_300_rollouts_cpu_seconds_best": round(one_kind_cpu, 3),
        "checks": {key: bool(value) for key, value in checks.items()},
        "targets": {"all_kinds_seconds": 10.0, "one_kind_300_rollouts_seconds": 0.3},
        "versions": {"numpy": numpy.__version__, "scipy": scipy.__version__},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1min_before": round(load_before, 2),
                    "load_average_1min_after": round(os.getloadavg()[0], 2)},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table.to_string())
    print(json.dumps({key: value for key, value in result.items() if key.startswith("simulate") or
                      key in ("checks", "machine")}, indent=2))


if __name__ == "__main__":
    main()
