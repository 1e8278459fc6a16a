"""The wire schema of the fraud model server: one typed transaction in, one decision out.

A request names every field; types are strict where lax coercion would hide a client bug (an
amount sent as the string ``"12.5"`` is rejected, not silently converted); categories must be
ones the model was trained on; unknown fields are rejected. The REST app validates with these
models and the gRPC service validates its messages with the same models, so both answer the
same input with the same field-level errors.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from lifecycle.data import CATEGORIES, CHANNELS, COUNTRIES, DEVICES

if TYPE_CHECKING:
    import pandas as pd

MAX_AMOUNT = 1_000_000.0
MAX_BATCH_ROWS = 5_000
# One transaction is ~200 bytes of JSON; a full batch ~1 MB. Anything larger is refused with 413.
MAX_SINGLE_BODY_BYTES = 16 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024


def _iso_text_only(value: Any) -> Any:
    """Accept timestamps as ISO-8601 text (or datetime objects from Python callers), never numbers:
    a bare number could be seconds or milliseconds, and guessing wrong shifts every time feature."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError(f"timestamp must be ISO-8601 text like '2026-02-01T08:15:00', got {type(value).__name__}")


def _as_naive_utc(value: datetime) -> datetime:
    """The training data's clock is naive UTC: convert an aware timestamp to that clock."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if not 2000 <= value.year <= 2100:
        raise ValueError(f"timestamp year must be between 2000 and 2100, got {value.year}")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_iso_text_only), AfterValidator(_as_naive_utc)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Transaction(BaseModel):
    """One card transaction to score: the raw inputs of :data:`lifecycle.features.RAW_INPUTS`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "transaction_id": "t-0001", "user_id": "u00042", "timestamp": "2026-02-01T08:15:00", "amount": 42.5,
        "merchant_category": "grocery", "channel": "chip", "device": "terminal", "country": "US"}]})

    transaction_id: Identifier | None = Field(None, description="the caller's id, echoed back")
    user_id: Identifier = Field(description="the card holder; their earlier transactions are the features' past")
    timestamp: Timestamp = Field(description="when it happened, ISO-8601 (naive = UTC)")
    amount: float = Field(ge=0, le=MAX_AMOUNT, strict=True, allow_inf_nan=False,
                          description="amount in the card's currency, a JSON number")
    merchant_category: Literal[CATEGORIES]
    channel: Literal[CHANNELS]
    device: Literal[DEVICES]
    country: Literal[COUNTRIES]


class TransactionBatch(BaseModel):
    """Many transactions, scored in order (each sees the ones before it as its user's past)."""

    model_config = ConfigDict(extra="forbid")

    transactions: list[Transaction] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


class Prediction(BaseModel):
    """The model's answer for one transaction."""

    transaction_id: str | None
    fraud_probability: float = Field(description="the model's probability that this is fraud")
    is_fraud: bool = Field(description="the decision: fraud_probability >= threshold")
    threshold: float
    model_name: str
    model_version: str


class BatchPrediction(BaseModel):
    """Answers for a batch, in the order of the request."""

    predictions: list[Prediction]
    model_name: str
    model_version: str


class ModelMetadata(BaseModel):
    """What is being served, and how."""

    model_name: str
    model_version: str
    model_uri: str
    model_class: str
    threshold: float
    feature_columns: list[str]
    predictor: str
    micro_batching: bool
    history_rows: int
    users_known: int


def validation_errors(error: Any) -> list[dict[str, Any]]:
    """A pydantic ``ValidationError`` as plain, JSON-safe field errors (``loc``, ``msg``, ``type``)."""
    return [{"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False, include_context=False, include_input=False)]


def request_bodies(transactions: pd.DataFrame) -> list[dict[str, Any]]:
    """The JSON request bodies of :class:`Transaction` for these rows."""
    frame = transactions[list(Transaction.model_fields)].copy()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame.to_dict("records")
