"""The transactions table: its columns and vocabularies, CSV writing with fixed bytes, and checks on read.

Every stage that reads transactions (versioning, the pipeline, the registry's history, monitoring)
goes through :func:`read_transactions` or :func:`validate_transactions`, so a bad file fails at the
door with a message that names the column, the rows and what was expected.

Taught in notebooks/01_data_versioning.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lifecycle.errors import SchemaError

CATEGORIES = ("grocery", "restaurant", "fuel", "transport", "retail", "online_shopping",
              "entertainment", "travel", "electronics", "gift_cards")
CHANNELS = ("chip", "contactless", "online")
DEVICES = ("terminal", "mobile", "desktop")
COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "MX", "BR", "IN", "JP")

# Expected columns and the kind of value each holds, in file order.
COLUMNS = {
    "transaction_id": "text",
    "user_id": "text",
    "timestamp": "datetime",
    "amount": "number",
    "merchant_category": "category",
    "channel": "category",
    "device": "category",
    "country": "category",
    "is_fraud": "0/1",
}
ALLOWED = {"merchant_category": CATEGORIES, "channel": CHANNELS, "device": DEVICES, "country": COUNTRIES}
_WANT = {"datetime": "an ISO timestamp like 2026-01-01T08:15:00", "number": "a non-negative number",
         "0/1": "0 or 1", "text": "a non-empty id"}


def write_transactions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write transactions as CSV with a fixed format (same table → same bytes).

    Args:
        frame: a table with the columns of :data:`COLUMNS`.
        path: the CSV file to write (folders are created).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame[list(COLUMNS)].copy()
    out["timestamp"] = np.datetime_as_string(out["timestamp"].to_numpy(dtype="datetime64[s]"), unit="s")
    out["amount"] = np.char.mod("%.2f", out["amount"].to_numpy())
    out.to_csv(path, index=False, lineterminator="\n")
    return path


def read_transactions(path: str | Path, require_label: bool = True) -> pd.DataFrame:
    """Read a transactions CSV and check it against :data:`COLUMNS`.

    Args:
        path: the CSV file.
        require_label: whether ``is_fraud`` must be present (False for unlabelled traffic).

    Returns:
        The table with ``timestamp`` parsed and ``amount``/``is_fraud`` typed.

    Raises:
        SchemaError: the file is missing, or columns are missing or hold values of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"no transactions file at {path}; create one with "
                          f"'lifecycle data generate --out {path}'")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return validate_transactions(frame, source=str(path), require_label=require_label)


def validate_transactions(frame: pd.DataFrame, source: str = "table", require_label: bool = True) -> pd.DataFrame:
    """Check and type a transactions table; see :func:`read_transactions`.

    Raises:
        SchemaError: missing columns, or values of the wrong kind (the first rows that hold them are named).
    """
    expected = [c for c in COLUMNS if require_label or c != "is_fraud"]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {missing}; expected columns {expected}, "
                          f"got {list(frame.columns)}")
    out = frame.copy()
    problems = []
    for column in expected:
        kind = COLUMNS[column]
        values = out[column]
        out[column], bad = _parse(column, kind, values)
        if bad.any():
            rows = [int(i) for i in np.flatnonzero(bad.to_numpy())[:3]]
            examples = [values.iloc[i] for i in rows]
            want = _WANT.get(kind) or f"one of {list(ALLOWED.get(column, ()))}"
            problems.append(f"column {column!r} must hold {want}; {int(bad.sum())} row(s) do not, "
                            f"e.g. rows {rows} hold {examples}")
    if problems:
        raise SchemaError(f"{source}: " + "; ".join(problems))
    return out


def _parse(column: str, kind: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(typed values, which rows are bad) for one column of the kind ``kind``."""
    if kind == "datetime":
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        return parsed, parsed.isna()
    if kind == "number":
        parsed = pd.to_numeric(values, errors="coerce")
        return parsed.astype(float), parsed.isna() | (parsed < 0)
    if kind == "0/1":
        parsed = pd.to_numeric(values, errors="coerce")
        return parsed.fillna(-1).astype(np.int64), ~parsed.isin([0, 1])
    if kind == "category":
        return values, ~values.isin(ALLOWED[column])
    return values, values.astype(str).str.len() == 0
