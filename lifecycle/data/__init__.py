"""Data, lesson 01's stage: the seeded transaction generator, its drift scenarios, when labels arrive, and the schema.

Modules: :mod:`~lifecycle.data.generator` (:func:`generate_transactions`, one window of traffic;
:func:`generate_period`, quiet weeks and then a drift), :mod:`~lifecycle.data.scenarios` (data drift,
concept drift, sudden or gradual), :mod:`~lifecycle.data.labels` (label delay and feedback bias), and
:mod:`~lifecycle.data.schema` (the columns, CSV bytes, checks on read).

Taught in notebooks/01_data_versioning.ipynb and notebooks/07_monitoring.ipynb.
"""

from __future__ import annotations

from lifecycle.data.generator import FRAUD_RATE, generate_period, generate_transactions
from lifecycle.data.labels import LabelDelay, label_arrivals, labels_as_of, training_labels_as_of
from lifecycle.data.scenarios import SCENARIOS, drift_strength
from lifecycle.data.schema import (
    ALLOWED,
    CATEGORIES,
    CHANNELS,
    COLUMNS,
    COUNTRIES,
    DEVICES,
    read_transactions,
    validate_transactions,
    write_transactions,
)

__all__ = [
    "ALLOWED", "CATEGORIES", "CHANNELS", "COLUMNS", "COUNTRIES", "DEVICES", "FRAUD_RATE", "LabelDelay", "SCENARIOS",
    "drift_strength", "generate_period", "generate_transactions", "label_arrivals", "labels_as_of",
    "read_transactions", "training_labels_as_of", "validate_transactions", "write_transactions",
]
