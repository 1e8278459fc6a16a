"""Benchmark: one drift check of 100k rows x 10 features (target <= 10 s), and Evidently's share of it.

    .venv/bin/python benchmarks/monitoring.py [--rows 100000] [--repeats 3]

The reference is a baseline window and the current one a ``data_drift`` window of the same size,
both with 10,000 users (the course's density of transactions per user); features are built
beforehand (not timed). Timed: ``DriftMonitor.fit`` + ``check`` on the 10 monitored features, and
within it the time spent in Evidently's own drift tests (``get_stattest`` and the tests it picks, as
``lifecycle.monitoring.column_drift`` runs them); the rest is the monitor's own work (copying
columns, leaving out non-finite values, deciding). Importing Evidently and building and saving the
HTML report (Evidently's ``Report``, with a plot per column) are measured apart. Writes
benchmarks/results/monitoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "monitoring.json"


def timed(owner: type, name: str, spent: list[float]) -> None:
    """Wrap ``owner.name`` so every call adds its duration to ``spent``."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        clock = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - clock)

    setattr(owner, name, staticmethod(wrapper) if isinstance(owner.__dict__.get(name), staticmethod) else wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from lifecycle.data import generate_transactions
    from lifecycle.features import build_features
    from lifecycle.monitoring import MONITORED_FEATURES, DriftMonitor

    users = max(args.rows // 10, 100)
    reference = build_features(generate_transactions(args.rows, seed=1, scenario="baseline", users=users))
    current = build_features(generate_transactions(args.rows, seed=1, scenario="data_drift", users=users,
                                                   start="2026-02-01"))
    clock = time.perf_counter()
    import evidently
    from evidently.legacy.calculations import stattests
    from evidently.legacy.calculations.stattests import registry
    import_seconds = time.perf_counter() - clock

    evidently_spent: list[float] = []
    for owner, name in ((stattests, "get_stattest"), (registry.StatTest, "__call__")):
        timed(owner, name, evidently_spent)
    totals, evidently_shares, decision = [], [], None
    for _ in range(args.repeats):
        evidently_spent.clear()
        clock = time.perf_counter()
        monitor = DriftMonitor().fit(reference)
        decision = monitor.check(current)
        total = time.perf_counter() - clock
        totals.append(total)
        evidently_shares.append(sum(evidently_spent) / total)
    with tempfile.TemporaryDirectory() as folder:
        clock = time.perf_counter()
        report = monitor.save_report(Path(folder) / "report.html")
        html_seconds, html_mb = time.perf_counter() - clock, report.stat().st_size / 1e6

    best = totals.index(min(totals))
    result = {
        "rows_reference": len(reference), "rows_current": len(current), "features": len(MONITORED_FEATURES),
        "check_seconds_best": round(totals[best], 2),
        "check_seconds_median": round(statistics.median(totals), 2),
        "evidently_share_of_check": round(evidently_shares[best], 3),
        "evidently_seconds_best": round(totals[best] * evidently_shares[best], 2),
        "import_evidently_seconds": round(import_seconds, 2),
        "save_html_seconds": round(html_seconds, 2), "html_mb": round(html_mb, 1),
        "drifted_features": decision.drifted_features, "action": decision.action,
        "evidently": evidently.__version__,
        "targets": {"check_seconds": 10.0},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
