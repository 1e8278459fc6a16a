"""When the truth arrives: label delay and feedback bias for transactions a model has scored.

A fraud model's labels do not come with the transaction. What the bank learns, and when:

* **Chargebacks** (label delay): an approved fraudulent transaction is disputed by its cardholder
  after a delay drawn from a log-normal distribution (default median 30 days, ``sigma`` 0.6: a
  long tail, one in ten after about 65 days).
* **Analyst review** (feedback bias): a *blocked* transaction never produces a chargeback (the
  money never left). It gets a label only if an analyst reviews it (or the customer answers the
  "was this you?" message): with probability ``review_probability``, after a short log-normal
  delay (default median 3 days). The others stay unlabelled for ever.
* **Maturity**: an approved transaction with no chargeback after ``mature_days`` is taken as
  genuine. That is what banks do, and it is wrong for the frauds whose chargeback comes later
  (their label flips to fraud when it does).

So the labels that have arrived on a given day are biased: recent weeks are mostly unlabelled, the
model's flags are labelled only by review, and its misses only by chargebacks. The random draws
do not depend on which rows were blocked, so changing the model (or the policy) keeps each row's
delays: :func:`label_arrivals` is cheap to re-run with another ``blocked``.

Taught in notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lifecycle.errors import ConfigError, SchemaError


@dataclass(frozen=True)
class LabelDelay:
    """How labels arrive (see the module doc); all times in days."""

    chargeback_median_days: float = 30.0
    chargeback_sigma: float = 0.6
    review_probability: float = 0.5
    review_median_days: float = 3.0
    review_sigma: float = 0.5
    mature_days: float = 45.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"LabelDelay.{name} must be a finite number >= 0, got {value!r}")
        if self.review_probability > 1:
            raise ConfigError(f"review_probability must be in [0, 1], got {self.review_probability!r}")


def label_arrivals(transactions: pd.DataFrame, blocked: np.ndarray, seed: int = 42,
                   delay: LabelDelay | None = None) -> pd.DataFrame:
    """When each transaction's label arrives, given which ones the model blocked.

    Args:
        transactions: with ``transaction_id``, ``timestamp`` and the true ``is_fraud``.
        blocked: one bool per row: the model flagged (and the bank blocked) it.
        seed: random seed of the delays and of which blocked rows get reviewed.
        delay: the label process (default :class:`LabelDelay()`).

    Returns:
        One row per transaction, in the same order: ``transaction_id``, ``timestamp``, ``is_fraud``,
        ``blocked``, ``reviewed_at`` (a blocked row's review, else NaT), ``chargeback_at`` (an
        approved fraud's dispute, else NaT) and ``matures_at`` (when an approved row counts as genuine).
        Read it with :func:`labels_as_of`.

    Raises:
        SchemaError: a missing column, or ``blocked`` of the wrong length.
    """
    delay = delay or LabelDelay()
    missing = {"transaction_id", "timestamp", "is_fraud"} - set(transactions.columns)
    if missing:
        raise SchemaError(f"label_arrivals needs columns {sorted(missing)}; got {list(transactions.columns)}")
    blocked = np.asarray(blocked, dtype=bool)
    if len(blocked) != len(transactions):
        raise SchemaError(f"blocked has {len(blocked)} values for {len(transactions)} transactions")
    rng = np.random.default_rng([seed, 2, len(transactions)])
    n = len(transactions)
    reviewed = rng.random(n) < delay.review_probability
    review_days = delay.review_median_days * np.exp(delay.review_sigma * rng.standard_normal(n))
    chargeback_days = delay.chargeback_median_days * np.exp(delay.chargeback_sigma * rng.standard_normal(n))
    when = pd.to_datetime(transactions["timestamp"]).to_numpy()
    fraud = transactions["is_fraud"].to_numpy() == 1
    return pd.DataFrame({
        "transaction_id": transactions["transaction_id"].to_numpy(),
        "timestamp": when,
        "is_fraud": transactions["is_fraud"].to_numpy(dtype=np.int64),
        "blocked": blocked,
        "reviewed_at": _at(when, review_days, blocked & reviewed),
        "chargeback_at": _at(when, chargeback_days, ~blocked & fraud),
        "matures_at": _at(when, np.full(n, delay.mature_days), ~blocked),
    })


def labels_as_of(arrivals: pd.DataFrame, day) -> tuple[np.ndarray, np.ndarray]:
    """The labels a bank holds on ``day``: ``(labelled, label)``, one value per row of ``arrivals``.

    A reviewed row has its true label; an approved row is fraud once its chargeback has arrived, and
    genuine once it matured without one (even if a chargeback comes later); the rest are unlabelled
    (``label`` is 0 there and means nothing).
    """
    day = np.datetime64(pd.Timestamp(day))
    reviewed = arrivals["reviewed_at"].to_numpy() <= day
    charged = arrivals["chargeback_at"].to_numpy() <= day
    matured = arrivals["matures_at"].to_numpy() <= day
    label = np.where(reviewed, arrivals["is_fraud"].to_numpy(), np.where(charged, 1, 0))
    return reviewed | charged | matured, label.astype(np.int64)


def training_labels_as_of(arrivals: pd.DataFrame, day) -> tuple[np.ndarray, np.ndarray]:
    """The labels a retrain on ``day`` may fit: ``(usable, label)``.

    Reviewed rows (either class) and matured approved rows, as :func:`labels_as_of` gives them. A
    recent chargeback is left out until its row matures: the recent genuine approvals are not
    labelled yet, so fitting recent frauds alone would teach the model that recent traffic is fraud.
    """
    labelled, label = labels_as_of(arrivals, day)
    day = np.datetime64(pd.Timestamp(day))
    usable = (arrivals["reviewed_at"].to_numpy() <= day) | (arrivals["matures_at"].to_numpy() <= day)
    return usable & labelled, label


def _at(when: np.ndarray, days: np.ndarray, applies: np.ndarray) -> np.ndarray:
    moment = when + (days * 86_400).astype("timedelta64[s]")
    return np.where(applies, moment, np.datetime64("NaT"))
