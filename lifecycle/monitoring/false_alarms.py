"""How often lesson 07's policy would retrain on quiet periods: its false-alarm rate, by resampling.

:func:`resampled_false_alarms` bootstraps a quiet :class:`~lifecycle.monitoring.ScoredPeriod` and its
reference and runs the policy's retrain tests on each copy; benchmarks/monitoring.py measures the rate
over fresh seeds.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifecycle.data import LabelDelay
from lifecycle.monitoring.cbpe import CBPE
from lifecycle.monitoring.drift import CATEGORICAL_FEATURES, MONITORED_FEATURES
from lifecycle.monitoring.period import Reference, ScoredPeriod
from lifecycle.monitoring.policy import Policy, drifted, estimate_test, labels_test
from lifecycle.monitoring.schedule import weekly_drift


def resampled_false_alarms(period: ScoredPeriod, reference: Reference, windows: int = 50,
                           delay: LabelDelay | None = None, policy: Policy | None = None, seed: int = 0,
                           null: bool = True) -> pd.DataFrame:
    """How often the policy would retrain on quiet periods: ``windows`` resampled copies of a quiet period.

    Each copy draws every week's transactions again from that week of ``period`` and the reference's
    rows again from the reference (with replacement, as many as each had: a bootstrap, so that both
    sides of every comparison vary as they would from quarter to quarter), recalibrates CBPE on the
    drawn reference, draws again which flags get reviewed and when, and runs the policy's two retrain
    tests week by week (realised precision on the labelled flags so far, and CBPE's estimate). The
    drift tests run on the resampled rows only in the weeks where they could change the decision (the
    estimate fell: that retrain also needs input or prediction drift), so a copy costs milliseconds.

    With ``null`` (the default) the flags' outcomes, the reference's and the period's alike, are drawn
    from their pooled outcomes: the quarters are then quiet *relative to the reference* too, which is
    what a false alarm is. Without it, each copy keeps its flags' own outcomes and the reference is
    resampled around its own: that measures the rate *for this reference*, higher when its precision
    came out high by chance. The rate over fresh seeds (new references, new periods) is
    benchmarks/monitoring.py's.

    Returns:
        One row per copy: ``seed``, ``retrain`` (any retrain decision in the period), ``first_week``,
        and whether each retrain test fired (``labels``, ``estimate``).
    """
    from lifecycle.monitoring.cbpe import weekly_expected_confusion
    from lifecycle.monitoring.schedule import check_days

    delay, policy = delay or LabelDelay(), policy or Policy(looks=period.weeks)
    members = [np.flatnonzero(period.week == w) for w in range(period.weeks)]
    reference_outcomes = reference.labels[reference.scores >= reference.threshold]
    pooled = np.r_[reference_outcomes, period.transactions["is_fraud"].to_numpy()[period.flagged]]
    stamps = period.transactions["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64)
    checks = check_days(period.start, period.weeks).to_numpy().astype("datetime64[s]").astype(np.int64)
    truth = period.transactions["is_fraud"].to_numpy()
    rows = []
    for copy in range(windows):
        rng = np.random.default_rng([seed, 4, copy])
        drawn = rng.integers(0, len(reference.scores), len(reference.scores))
        cbpe = CBPE(reference.threshold).fit(reference.scores[drawn], reference.labels[drawn])
        counts = {"flags": cbpe.reference_flags_, "true_flags": cbpe.reference_true_flags_}
        if null:
            counts["true_flags"] = int(rng.choice(pooled, size=counts["flags"]).sum())
        pick = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members if len(m)])
        week, flagged = period.week[pick], period.flagged[pick]
        flags = pick[flagged]  # blocked rows: labelled only by review; the estimated precision needs only them
        estimate = weekly_expected_confusion(cbpe.probabilities(period.scores[flags]), np.ones(len(flags), bool),
                                             period.week[flags], period.weeks)
        outcome = rng.choice(pooled, size=len(flags)) if null else truth[flags]
        reviewed = rng.random(len(flags)) < delay.review_probability
        review_days = delay.review_median_days * np.exp(delay.review_sigma * rng.standard_normal(len(flags)))
        reviewed_at = np.where(reviewed, stamps[flags] + review_days * 86_400, np.inf)
        first, fired = None, {"labels": False, "estimate": False}
        for w in range(period.weeks):
            window = ((period.week[flags] > w - policy.label_weeks) & (period.week[flags] <= w)
                      & (reviewed_at <= checks[w]))
            n, k = int(window.sum()), int(outcome[window].sum())
            labels_fell = n >= policy.min_labelled_flags and labels_test(
                k, n, counts["true_flags"], counts["flags"], policy.retrain_level)[0]
            estimate_fell = estimate_test(estimate["precision"][w], estimate["precision_se"][w], counts["true_flags"],
                                          counts["flags"], policy.retrain_level)[0]
            retrain = labels_fell
            if estimate_fell and not labels_fell:  # that retrain needs drift too: test the resampled week
                week_rows = pick[week == w]
                table = weekly_drift(reference.features, reference.scores, period.features.iloc[week_rows],
                                     period.scores[week_rows], np.zeros(len(week_rows), dtype=np.int64), 1,
                                     MONITORED_FEATURES, CATEGORICAL_FEATURES, seed=copy).xs(0, level="week")
                features = table.drop(index="score")
                retrain = bool(drifted(features, policy.feature_level(len(features)))
                               or drifted(table.loc[["score"]], policy.prediction_level))
            fired = {"labels": fired["labels"] or labels_fell, "estimate": fired["estimate"] or estimate_fell}
            if retrain and first is None:
                first = w + 1
        rows.append({"seed": copy, "retrain": first is not None, "first_week": first, **fired})
    return pd.DataFrame(rows)
