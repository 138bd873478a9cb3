"""A trial's metric batches go to MLflow from a background thread, retried while the server is only busy.

Training never waits on the tracking server: `submit` queues a batch and returns. The thread sends batches
in order; a batch the server refuses for overload (MLflow answers a full connection pool with HTTP 400
"QueuePool limit ... timed out"; a proxy with 429 or 503), or that cannot reach it, is sent again with
exponential backoff. While a request is out, later batches wait in the queue, and the next request carries
all of them at once (up to MLflow's 1,000 metrics per `log_batch`): a slow server gets fewer, larger
requests instead of a growing backlog of small ones, so a trial's request rate falls as the server's
latency rises. Resending is idempotent: a batch keeps its timestamps, and MLflow's SQL store drops
a metric point identical to one it holds (same key, step, timestamp and value), so a batch whose answer
was lost is not logged twice. `flush` waits until everything submitted is stored; trials call it at every
checkpoint and at their end. Only when the server has refused or not answered for `retry_limit_s` in a row
(`SWEEP_TRACKING_RETRY_S`, default 600) does the trial fail, with one line.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import deque

from orchestration.errors import UNREACHABLE_SIGNS, first_line

RETRY_LIMIT_ENV = "SWEEP_TRACKING_RETRY_S"
DEFAULT_RETRY_LIMIT_S = 600.0
MAX_BATCH = 1000  # metrics in one log_batch request: MLflow's own limit
OVERLOAD_SIGNS = ("QueuePool limit", "timed out", "database is locked", "too many connections",
                  "could not obtain lock", "Connection aborted", "RemoteDisconnected", *UNREACHABLE_SIGNS)


class TrackingUnavailable(RuntimeError):
    """The tracking server refused or did not answer for longer than the retry limit."""


def retry_limit_s() -> float:
    return float(os.environ.get(RETRY_LIMIT_ENV, DEFAULT_RETRY_LIMIT_S))


def is_transient(error: BaseException) -> bool:
    """Would the same request succeed later? Overload, rate limits, gateway errors and lost connections
    would; a request the server finds invalid would not, and is raised at once. Nor would a full disk:
    MLflow's SQL store answers every SQLAlchemy OperationalError, "database or disk is full" included, as
    TEMPORARILY_UNAVAILABLE (HTTP 503), the same as "database is locked", so the disk is checked first."""
    import requests
    from mlflow.exceptions import MlflowException

    from orchestration.errors import is_disk_full

    if is_disk_full(error):
        return False
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(error, MlflowException) and error.get_http_status_code() in (429, 502, 503, 504):
        return True
    return any(sign in str(error) for sign in OVERLOAD_SIGNS)


def call_with_retries(call, what: str, limit_s: float | None = None, sleep=time.sleep, clock=time.monotonic):
    """`call()` until it succeeds, retrying transient errors with exponential backoff (0.5 s doubling to 15 s,
    with jitter) for at most `limit_s` in a row; then TrackingUnavailable in one line."""
    limit_s = retry_limit_s() if limit_s is None else limit_s
    started, delay = clock(), 0.5
    while True:
        try:
            return call()
        except Exception as err:
            if not is_transient(err):
                raise
            waited = clock() - started
            if waited >= limit_s:
                first = first_line(err)[:200]
                raise TrackingUnavailable(
                    f"the MLflow tracking server stopped answering: {what} was refused or unanswered for "
                    f"{waited:.0f} s ({RETRY_LIMIT_ENV}={limit_s:g}); last: {type(err).__name__}: {first}") from err
            # jitter first, then the clamp: the last wait ends at the limit, not up to 20% past it
            sleep(min(delay * random.uniform(0.8, 1.2), max(0.0, limit_s - waited)))
            delay = min(delay * 2, 15.0)


class BatchSender:
    """One trial's metric batches, sent in order by a daemon thread through `send(batch)`; batches queued
    while a request is out are sent together, up to `max_batch` items."""

    def __init__(self, send, what: str = "a metric batch", limit_s: float | None = None, max_batch: int = MAX_BATCH):
        self._send, self._what, self._limit_s, self._max_batch = send, what, limit_s, max_batch
        self._queue: deque = deque()
        self._busy = False
        self._error: BaseException | None = None
        self._reported = False  # the error has been raised to the trial once
        self._closed = False
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="mlflow-metric-sender", daemon=True)
        self._thread.start()

    def submit(self, batch: list) -> None:
        """Queue a batch and return at once (raises if an earlier batch could not be sent)."""
        with self._lock:
            self._raise_if_failed()
            self._queue.append(batch)
            self._lock.notify_all()

    def flush(self) -> None:
        """Block until every submitted batch is stored; raise TrackingUnavailable if one could not be."""
        with self._lock:
            while (self._queue or self._busy) and self._error is None:
                self._lock.wait(0.5)
            self._raise_if_failed()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._busy

    def close(self) -> None:
        """Send what is queued, then stop the thread (an error already raised to the trial is not raised again)."""
        try:
            reported = self._reported
            self.flush()
        except TrackingUnavailable:
            if not reported:
                raise
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            self._thread.join(timeout=5)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            self._reported = True
            raise TrackingUnavailable(str(self._error)) from self._error

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if not self._queue:
                    return
                batch, self._busy = list(self._queue.popleft()), True
                while self._queue and len(batch) + len(self._queue[0]) <= self._max_batch:
                    batch.extend(self._queue.popleft())
            try:
                call_with_retries(lambda: self._send(batch), self._what, self._limit_s)
            except BaseException as err:  # the trial's next submit or flush raises it
                with self._lock:
                    self._error, self._busy = err, False
                    self._queue.clear()
                    self._lock.notify_all()
                return
            with self._lock:
                self._busy = False
                self._lock.notify_all()
