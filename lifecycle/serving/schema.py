"""The wire schema of the fraud model server: one typed transaction in, one decision out.

A request names every field; types are strict where lax coercion would hide a client bug (an
amount sent as the string ``"12.5"`` is rejected, not silently converted); categories must be
ones the model was trained on; unknown fields are rejected. The REST app validates with these
models and the gRPC service validates its messages with the same models, so both answer the
same input with the same field-level errors.

Every rule is also in the JSON schema these models publish (the REST server's ``/openapi.json``):
a client generated from it sends only requests the server accepts, and
``tests/unit/test_openapi.py`` checks that with requests generated from the published document.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from lifecycle.data import CATEGORIES, CHANNELS, COUNTRIES, DEVICES

if TYPE_CHECKING:
    import pandas as pd

MAX_AMOUNT = 1_000_000.0
MAX_BATCH_ROWS = 5_000
MIN_YEAR, MAX_YEAR = 2000, 2100
# A transaction is ~200 bytes of JSON (up to ~360 with every field at its longest): a batch of 5,000
# typical ones is just under the batch limit, one of long ids may be over it. Anything larger is
# refused with 413, as the OpenAPI document says (the gRPC service caps its messages the same).
MAX_SINGLE_BODY_BYTES = 16 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024
# The timestamp's text, as the schema publishes it and the server enforces it: a date that exists
# (30 days in April, 29 February in leap years only) with a year from 2000 to 2100 as written, a time
# to the second (a fraction allowed), an optional UTC offset (none: UTC, the training data's clock).
# Not JSON Schema's "date-time" format: that one requires the offset, which the server does not.
_YEAR, _LEAP = r"(20[0-9]{2}|2100)", r"20(0[048]|[2468][048]|[13579][26])"  # 2100 is not a leap year
_DATE = (rf"({_YEAR}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|{_YEAR}-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
         rf"|{_YEAR}-02-(0[1-9]|1[0-9]|2[0-8])|{_LEAP}-02-29)")
TIMESTAMP_PATTERN = (rf"^{_DATE}[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,6}})?"
                     rf"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$")
_TIMESTAMP_TEXT = re.compile(TIMESTAMP_PATTERN[:-1] + r"\Z")  # "$" as JSON Schema means it: no trailing newline


def _iso_text_only(value: Any) -> Any:
    """Accept timestamps as ISO-8601 text of the published pattern (or datetime objects from Python
    callers), never numbers: a bare number could be seconds or milliseconds, and guessing wrong
    shifts every time feature (pydantic alone would read ``"1769588100"`` as seconds)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if not _TIMESTAMP_TEXT.match(value):
            raise ValueError(f"timestamp must be ISO-8601 text like '2026-02-01T08:15:00' (seconds included, "
                             f"optional fraction and UTC offset) with a year from {MIN_YEAR} to {MAX_YEAR}")
        return value
    raise ValueError(f"timestamp must be ISO-8601 text like '2026-02-01T08:15:00', got {type(value).__name__}")


def _as_naive_utc(value: datetime) -> datetime:
    """The training data's clock is naive UTC: convert an aware timestamp to that clock. The year
    is checked as written (before the conversion), as the published pattern states it."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"timestamp year must be between {MIN_YEAR} and {MAX_YEAR}, got {value.year}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


Timestamp = Annotated[datetime, BeforeValidator(_iso_text_only), AfterValidator(_as_naive_utc),
                      WithJsonSchema({"type": "string", "pattern": TIMESTAMP_PATTERN})]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Transaction(BaseModel):
    """One card transaction to score: the raw inputs of :data:`lifecycle.features.RAW_INPUTS`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "transaction_id": "t-0001", "user_id": "u00042", "timestamp": "2026-02-01T08:15:00", "amount": 42.5,
        "merchant_category": "grocery", "channel": "chip", "device": "terminal", "country": "US"}]})

    transaction_id: Identifier | None = Field(None, description="the caller's id, echoed back")
    user_id: Identifier = Field(description="the card holder; their earlier transactions are the features' past")
    timestamp: Timestamp = Field(
        description=f"when it happened: ISO-8601 text to the second, e.g. 2026-02-01T08:15:00 (no offset = UTC), "
                    f"a year from {MIN_YEAR} to {MAX_YEAR}",
        examples=["2026-02-01T08:15:00", "2026-02-01T09:15:00+01:00"])
    amount: float = Field(ge=0, le=MAX_AMOUNT, strict=True, allow_inf_nan=False,
                          description="amount in the card's currency, a JSON number")
    merchant_category: Literal[CATEGORIES]
    channel: Literal[CHANNELS]
    device: Literal[DEVICES]
    country: Literal[COUNTRIES]


class TransactionBatch(BaseModel):
    """Many transactions, scored in order (each sees the ones before it as its user's past)."""

    model_config = ConfigDict(extra="forbid")

    transactions: list[Transaction] = Field(
        min_length=1, max_length=MAX_BATCH_ROWS,
        description=f"1 to {MAX_BATCH_ROWS:,} transactions, in a body of at most {MAX_BATCH_BODY_BYTES:,} bytes "
                    f"(413 beyond it)")


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


class FieldError(BaseModel):
    """One reason a request was refused (pydantic's error, located as FastAPI locates it)."""

    loc: list[str | int] = Field(description='where: ["body", field, ...]')
    msg: str
    type: str = Field(description="pydantic's error type, e.g. missing, literal_error, float_type")
    input: Any = Field(None, description="the value given (JSON cannot hold NaN or infinity: those as text)")
    ctx: dict[str, Any] | None = Field(None, description="the rule's parameters, e.g. the allowed values")


class ValidationProblem(BaseModel):
    """The 422 answer: every bad field of the request."""

    detail: list[FieldError]


class Problem(BaseModel):
    """A 413 or 503 answer: what went wrong and what to do."""

    detail: str


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
