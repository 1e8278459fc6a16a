from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Transaction(_message.Message):
    __slots__ = ("transaction_id", "user_id", "timestamp", "amount", "merchant_category", "channel", "device", "country")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    user_id: str
    timestamp: str
    amount: float
    merchant_category: str
    channel: str
    device: str
    country: str
    def __init__(self, transaction_id: _Optional[str] = ..., user_id: _Optional[str] = ..., timestamp: _Optional[str] = ..., amount: _Optional[float] = ..., merchant_category: _Optional[str] = ..., channel: _Optional[str] = ..., device: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("transaction_id", "fraud_probability", "is_fraud", "threshold", "model_name", "model_version")
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    FRAUD_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    IS_FRAUD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    fraud_probability: float
    is_fraud: bool
    threshold: float
    model_name: str
    model_version: str
    def __init__(self, transaction_id: _Optional[str] = ..., fraud_probability: _Optional[float] = ..., is_fraud: _Optional[bool] = ..., threshold: _Optional[float] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class TransactionBatch(_message.Message):
    __slots__ = ("transactions",)
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[Transaction]
    def __init__(self, transactions: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ...) -> None: ...

class PredictionBatch(_message.Message):
    __slots__ = ("predictions", "model_name", "model_version")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    model_name: str
    model_version: str
    def __init__(self, predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class MetadataRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelMetadata(_message.Message):
    __slots__ = ("model_name", "model_version", "model_uri", "model_class", "threshold", "feature_columns", "predictor", "micro_batching", "history_rows", "users_known")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    MODEL_CLASS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    MICRO_BATCHING_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ROWS_FIELD_NUMBER: _ClassVar[int]
    USERS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    model_uri: str
    model_class: str
    threshold: float
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    predictor: str
    micro_batching: bool
    history_rows: int
    users_known: int
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., model_uri: _Optional[str] = ..., model_class: _Optional[str] = ..., threshold: _Optional[float] = ..., feature_columns: _Optional[_Iterable[str]] = ..., predictor: _Optional[str] = ..., micro_batching: _Optional[bool] = ..., history_rows: _Optional[int] = ..., users_known: _Optional[int] = ...) -> None: ...
