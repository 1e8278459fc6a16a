"""Making the model side fast without changing its answers.

Scoring one row with scikit-learn costs far more than the arithmetic: each ``predict_proba``
call validates its input, checks feature names and starts its thread pool, about a millisecond
for the course's HistGradientBoosting model whether it scores 1 row or 100. Two ways win it back:

* a compiled predictor: :class:`CompiledTreePredictor` hands the same trees to Treelite, whose
  small C++ predictor has a per-call cost in the tens of microseconds. It gives the same
  probabilities (to ~1e-15); for large batches, where scikit-learn's vectorised loop is faster
  per row, it calls scikit-learn.
* micro-batching: :class:`MicroBatcher` (the REST server's event loop) and :class:`ThreadMicroBatcher`
  (the gRPC server's handler threads) gather the requests that arrive together into one predict
  call, as Triton, TorchServe and Ray Serve do. Neither waits for a batch to fill: a batch is
  whatever queued up while the previous work ran, so a lone request is not delayed.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from lifecycle.errors import ConfigError

PREDICTOR_KINDS = ("auto", "compiled", "sklearn")
# Measured here: below a few hundred rows Treelite's per-call cost wins; above, scikit-learn's
# vectorised loop is faster per row. Both give the same probabilities, so the switch is free.
LARGE_BATCH_ROWS = 256
# Tree ensembles that treelite.sklearn.import_model accepts.
_TREE_MODELS = ("HistGradientBoostingClassifier", "GradientBoostingClassifier", "RandomForestClassifier",
                "ExtraTreesClassifier")


class Predictor(Protocol):
    """Anything that turns a float matrix (rows × model features) into fraud probabilities."""

    name: str

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row."""


class SklearnPredictor:
    """The fitted scikit-learn model, called as it is (the baseline)."""

    name = "sklearn"

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # Rows arrive as a matrix in the model's own column order (see model_feature_order);
            # building a DataFrame per call only to carry names would cost more than the predict.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self.model.predict_proba(rows)[:, 1]


class CompiledTreePredictor:
    """A tree ensemble served by Treelite's predictor (small batches) and scikit-learn (large ones).

    Args:
        model: a fitted scikit-learn tree ensemble (binary classifier).
        large_batch_rows: batches of at least this many rows go to scikit-learn.

    Raises:
        ConfigError: the model is not a tree ensemble Treelite can import.
    """

    name = "compiled"

    def __init__(self, model: Any, large_batch_rows: int = LARGE_BATCH_ROWS) -> None:
        import treelite

        if type(model).__name__ not in _TREE_MODELS:
            raise ConfigError(f"a compiled predictor needs a tree ensemble ({', '.join(_TREE_MODELS)}), "
                              f"got {type(model).__name__}; serve it with predictor='sklearn'")
        self._gtil = treelite.gtil
        self.forest = treelite.sklearn.import_model(model)
        self.fallback = SklearnPredictor(model)
        self.large_batch_rows = large_batch_rows
        # scikit-learn's DecisionTree-based ensembles compare float32 inputs with float32 thresholds;
        # Treelite compares float64. Round the same way, or a value between the two roundings of a
        # threshold goes down the other branch (seen: a random forest off by 0.0033 on 12 of 20k rows).
        self._as_float32 = type(model).__name__ != "HistGradientBoostingClassifier"

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        if self._as_float32:
            rows = rows.astype(np.float32).astype(np.float64)
        if len(rows) >= self.large_batch_rows:
            return self.fallback.predict_proba(rows)
        # One thread: a server runs one of these per worker process; threads would fight over cores.
        scores = self._gtil.predict(self.forest, rows, nthread=1)
        return scores.reshape(len(rows), -1)[:, -1]


def compile_predictor(model: Any, kind: str = "auto") -> Predictor:
    """The fastest predictor available for ``model`` with the same answers.

    Args:
        model: a fitted scikit-learn binary classifier.
        kind: ``compiled`` (Treelite; tree ensembles only), ``sklearn`` (the model as is), or
            ``auto`` (compiled when the model is a tree ensemble, else sklearn).

    Returns:
        A :class:`Predictor`.

    Raises:
        ConfigError: an unknown kind, or ``compiled`` for a model that is not a tree ensemble.
    """
    if kind not in PREDICTOR_KINDS:
        raise ConfigError(f"unknown predictor {kind!r}; choose one of {', '.join(PREDICTOR_KINDS)}")
    if kind == "sklearn" or (kind == "auto" and type(model).__name__ not in _TREE_MODELS):
        return SklearnPredictor(model)
    return CompiledTreePredictor(model)


def model_feature_order(model: Any, available: Sequence[str]) -> list[str]:
    """The columns the model was fitted on, in its order (never the order a request's keys came in).

    Raises:
        ConfigError: the model expects a feature the server cannot compute.
    """
    names = [str(n) for n in getattr(model, "feature_names_in_", available)]
    missing = [n for n in names if n not in available]
    if missing:
        raise ConfigError(f"the model expects feature(s) {missing} that lifecycle.features does not compute "
                          f"(it computes {list(available)}); retrain the model with the current features")
    return names


class MicroBatcher:
    """Gather rows submitted during one turn of the event loop into one predict call.

    ``submit`` queues a row and returns a future; the batch is predicted as soon as the event
    loop has run everything already waiting (``loop.call_soon``), or at once when it holds
    ``max_rows``. With one request in flight a batch is one row and nothing waits; with many,
    the rows that arrived together share one call. Results are in submission order and are the
    same numbers one-row calls would give.

    Args:
        predict: a function from a row matrix to one probability per row.
        max_rows: the largest batch.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_rows: int = 64) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self._rows: list[list[float]] = []
        self._futures: list[asyncio.Future] = []
        self._scheduled = False
        self.batches_ = 0
        self.rows_ = 0

    def submit(self, row: list[float]) -> asyncio.Future:
        """Queue one row (must be called on the event loop thread); await the returned future."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._rows.append(row)
        self._futures.append(future)
        if len(self._rows) >= self.max_rows:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        """Predict everything queued now and resolve its futures."""
        rows, futures = self._rows, self._futures
        self._rows, self._futures, self._scheduled = [], [], False
        if not rows:
            return
        self.batches_ += 1
        self.rows_ += len(rows)
        try:
            probabilities = self.predict(np.asarray(rows, dtype=np.float64))
        except Exception as err:  # hand the failure to every waiting request; nothing is swallowed
            for future in futures:
                if not future.done():
                    future.set_exception(err)
            return
        for future, probability in zip(futures, probabilities.tolist(), strict=True):
            if not future.done():  # a client that went away cancels its future
                future.set_result(probability)

    @property
    def mean_batch_rows(self) -> float:
        """Average rows per predict call so far."""
        return self.rows_ / self.batches_ if self.batches_ else 0.0


class _Waiting:
    """One row waiting in a :class:`ThreadMicroBatcher`: its result, or the turn to run a batch."""

    __slots__ = ("row", "ready", "leads", "probability", "error")

    def __init__(self, row: Sequence[float]) -> None:
        self.row, self.ready, self.leads = row, threading.Event(), False
        self.probability: float = float("nan")
        self.error: BaseException | None = None


class ThreadMicroBatcher:
    """Gather rows submitted from several threads at once into one predict call.

    The thread that finds nobody predicting runs the call, for every row queued by then (up to
    ``max_rows``); rows that arrive meanwhile wait, and when the call ends the first of them runs the
    next one, for all of them. A lone request runs at once; with many in flight, each predict call
    serves several. Results are the numbers one-row calls would give.

    Args:
        predict: a function from a row matrix to one probability per row (it may release the GIL).
        max_rows: the largest batch.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_rows: int = 64) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._running = False
        self.batches_ = 0
        self.rows_ = 0

    def predict_one(self, row: Sequence[float]) -> float:
        """The probability of one row (blocks until its batch has been predicted).

        Raises:
            Exception: whatever the predict call raised for this row's batch.
        """
        waiting = _Waiting(row)
        with self._lock:
            self._queue.append(waiting)
            waiting.leads = not self._running
            self._running = True
        if not waiting.leads:
            waiting.ready.wait()
        if waiting.leads:  # this thread runs the batch it is in (it is the first queued)
            self._run_one_batch()
        if waiting.error is not None:
            raise waiting.error
        return waiting.probability

    def _run_one_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[:self.max_rows], self._queue[self.max_rows:]
        try:
            probabilities = self.predict(np.asarray([w.row for w in batch], dtype=np.float64)).tolist()
            for waiting, probability in zip(batch, probabilities, strict=True):
                waiting.probability = probability
        except Exception as err:  # handed to every row of the batch; each caller re-raises it
            for waiting in batch:
                waiting.error = err
        with self._lock:
            self.batches_ += 1
            self.rows_ += len(batch)
            if self._queue:  # the next batch is run by the first thread waiting in it
                self._queue[0].leads = True
                self._queue[0].ready.set()
            else:
                self._running = False
        for waiting in batch:
            waiting.leads = False
            waiting.ready.set()

    @property
    def mean_batch_rows(self) -> float:
        """Average rows per predict call so far."""
        return self.rows_ / self.batches_ if self.batches_ else 0.0


class BatchedPredictor:
    """A :class:`Predictor` whose one-row calls go through a :class:`ThreadMicroBatcher` (calls with
    more rows go straight to ``predictor``): what the gRPC server scores with."""

    def __init__(self, predictor: Predictor, max_rows: int = 64) -> None:
        self.inner = predictor
        self.name = predictor.name
        self.batcher = ThreadMicroBatcher(predictor.predict_proba, max_rows)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 1:
            return np.asarray([self.batcher.predict_one(rows[0])])
        return self.inner.predict_proba(rows)
