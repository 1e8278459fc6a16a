"""The small state the playgrounds' browser test builds its four playgrounds from.

The test's notebook imports this module (copied beside it) and the test imports it too, so both sides
build the same data, models and scored periods for the seed: what the browser shows can be compared with
what the library functions return in the test's own process.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

SEED = 42
ROLLOUTS = 60  # the 06 simulator's rollouts per update: small, the numbers are still the simulator's
WORLDS = {"baseline": ("baseline", {}), "concept_drift": ("concept_drift", {})}


def one_thread() -> None:
    """One OpenMP thread, in the kernel and in the test alike: the same fits give the same scores."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP first: threadpoolctl limits only what is loaded)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def windows() -> SimpleNamespace:
    """Lessons 02 and 03's kind of split, small: 6,000 January transactions, the latest 30% as the test."""
    from lifecycle.data import generate_transactions
    from lifecycle.features import split_by_time

    january = generate_transactions(6_000, SEED, "baseline", days=31)
    train, test = split_by_time(january, 0.3)
    return SimpleNamespace(january=january, train=train, test=test)


def monitored() -> SimpleNamespace:
    """Lesson 07's state, small: a champion, its reference, and a five-week period in two worlds, scored."""
    from lifecycle.data import generate_period, generate_transactions
    from lifecycle.features import split_by_time
    from lifecycle.monitoring import Reference, score_periods
    from lifecycle.training import train_fraud_model

    january = generate_transactions(12_000, SEED, "baseline", days=31)
    train, test = split_by_time(january, 0.4)
    champion = train_fraud_model(train, test, "hgb", SEED)
    reference = Reference.from_window(champion.model, champion.threshold, test, train)
    start, weeks, drift_day = pd.Timestamp("2026-02-01"), 5, 14
    rows = round(12_000 * 7 / 31) * weeks
    periods = {name: generate_period(rows, SEED, scenario, start, 7 * weeks, drift_day, **strength)
               for name, (scenario, strength) in WORLDS.items()}
    scored = score_periods(champion.model, reference, periods, january, start, weeks,
                           start + pd.Timedelta(days=drift_day))
    return SimpleNamespace(model=champion.model, reference=reference, january=january, start=start, weeks=weeks,
                           drift_day=drift_day, rows=rows, scored=scored)


NOTEBOOK_CELLS = [
    """import lifecycle
import playground_lab as lab
from lifecycle.course.playgrounds import canary_playground, drift_playground, feature_playground, tracking_playground

lab.one_thread()
settings = lifecycle.load_settings().ensure_dirs()
w = lab.windows()""",
    "feature_playground(w.train, w.test, lab.SEED, settings=settings)",
    'tracking_playground(w.train, w.test, lab.SEED, "browser-test", settings)',
    "canary_playground(rollouts=lab.ROLLOUTS, settings=settings)",
    """m = lab.monitored()
drift_playground(m.model, m.reference, m.january, m.start, m.weeks, m.drift_day, m.rows, lab.SEED, scored=m.scored,
                 worlds=lab.WORLDS, settings=settings)""",
]
