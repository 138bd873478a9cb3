"""The background metric sender: order, retries of what only means "busy", a one-line failure after the
limit, and no waiting in the training loop."""

import threading
import time

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from orchestration.sender import BatchSender, TrackingUnavailable, call_with_retries, is_transient

POOL_FULL = MlflowException("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00",
                            error_code=BAD_REQUEST)


def test_overload_and_lost_connections_are_transient_and_bad_requests_are_not():
    assert is_transient(POOL_FULL)
    assert is_transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))  # HTTP 503
    assert is_transient(requests.ConnectionError("Connection refused"))
    assert is_transient(MlflowException("API request to ... failed with exception HTTPConnectionPool(host='h', "
                                        "port=5000): Max retries exceeded with url: /api/2.0/mlflow/runs/log-batch"))
    assert not is_transient(MlflowException("Invalid value nan for parameter 'step'",
                                            error_code=INVALID_PARAMETER_VALUE))
    assert not is_transient(ValueError("a bug"))


def test_a_full_disk_is_not_a_busy_server():
    """MLflow's SQL store answers every SQLAlchemy OperationalError as TEMPORARILY_UNAVAILABLE (HTTP 503):
    "database is locked" is worth retrying, "database or disk is full" is not (issue 33's probe retried it for
    600 s)."""
    import errno
    import sqlite3

    def as_mlflow_store_raises(message: str) -> MlflowException:
        try:
            try:
                raise sqlite3.OperationalError(message)
            except sqlite3.OperationalError as err:
                raise MlflowException(message=f"(sqlite3.OperationalError) {message}",
                                      error_code=TEMPORARILY_UNAVAILABLE) from err
        except MlflowException as wrapped:
            return wrapped

    assert is_transient(as_mlflow_store_raises("database is locked"))
    full = as_mlflow_store_raises("database or disk is full")
    assert not is_transient(full)

    def never_sleep(seconds):
        raise AssertionError(f"slept {seconds} s before giving up on a full disk")

    def store():
        raise full

    with pytest.raises(MlflowException, match="disk is full"):
        call_with_retries(store, "a metric batch", limit_s=600, sleep=never_sleep)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise MlflowException("API request failed: log-batch (Connection aborted.)") from err
    except MlflowException as wrapped:
        assert not is_transient(wrapped)  # a lost connection whose cause is a full disk


class FlakyStore:
    """Refuses the first `refusals` requests as an overloaded MLflow server does, then stores batches."""

    def __init__(self, refusals: int, delay_s: float = 0.0):
        self.refusals, self.delay_s, self.stored, self.calls = refusals, delay_s, [], 0

    def send(self, batch):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls <= self.refusals:
            raise POOL_FULL
        self.stored.append(batch)


def test_refused_batches_are_resent_in_order_and_flush_waits_for_them():
    store = FlakyStore(refusals=3)
    sender = BatchSender(store.send, limit_s=30)
    for step in range(1, 6):
        sender.submit([step])
    sender.flush()
    assert [step for batch in store.stored for step in batch] == [1, 2, 3, 4, 5]
    assert store.calls == 3 + len(store.stored)
    sender.close()


def test_submitting_does_not_wait_for_a_slow_server():
    store = FlakyStore(refusals=0, delay_s=0.2)
    sender = BatchSender(store.send, limit_s=30)
    started = time.perf_counter()
    for step in range(10):
        sender.submit([step])
    assert time.perf_counter() - started < 0.05, "the training loop never waits on the server"
    assert sender.pending() > 0
    sender.close()
    assert [step for batch in store.stored for step in batch] == list(range(10))


def test_batches_queued_behind_a_slow_request_go_out_together_within_mlflows_limit():
    store = FlakyStore(refusals=0, delay_s=0.3)
    sender = BatchSender(store.send, limit_s=30, max_batch=25)
    for step in range(100):
        sender.submit([(step, key) for key in range(5)])  # 5 metrics per step
    sender.flush()
    sent = [item for batch in store.stored for item in batch]
    assert sent == [(step, key) for step in range(100) for key in range(5)]
    assert max(len(batch) for batch in store.stored) == 25, "never more than max_batch in one request"
    assert len(store.stored) <= 21, "the first request alone, then full requests of 5 steps"
    sender.close()


def test_a_server_refusing_past_the_limit_fails_the_trial_in_one_line():
    store = FlakyStore(refusals=10**6)
    sender = BatchSender(store.send, what="metrics of trial t1", limit_s=1.0)
    sender.submit([1])
    with pytest.raises(TrackingUnavailable) as failure:
        sender.flush()
    message = str(failure.value)
    assert "\n" not in message and "metrics of trial t1 was refused or unanswered for 1 s" in message
    assert "SWEEP_TRACKING_RETRY_S=1" in message and "QueuePool limit" in message
    with pytest.raises(TrackingUnavailable):
        sender.submit([2])


def test_an_invalid_batch_is_raised_at_once():
    bad = MlflowException("Invalid metric", error_code=INVALID_PARAMETER_VALUE)
    calls = []

    def send():
        calls.append(1)
        raise bad

    with pytest.raises(MlflowException):
        call_with_retries(send, "a batch", limit_s=30)
    assert len(calls) == 1


def test_backoff_doubles_and_stops_at_the_limit():
    waits, clock = [], [0.0]

    def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    with pytest.raises(TrackingUnavailable):
        call_with_retries(lambda: (_ for _ in ()).throw(POOL_FULL), "a batch", limit_s=60, sleep=sleep,
                          clock=lambda: clock[0])
    assert 0.4 <= waits[0] <= 0.6 and 0.8 <= waits[1] <= 1.2 and max(waits) <= 18
    assert 59 <= sum(waits) <= 61


def test_flush_from_another_thread_sees_everything_sent():
    store = FlakyStore(refusals=1, delay_s=0.01)
    sender = BatchSender(store.send, limit_s=30)
    producer = threading.Thread(target=lambda: [sender.submit([i]) for i in range(50)])
    producer.start()
    producer.join()
    sender.flush()
    assert [i for batch in store.stored for i in batch] == list(range(50))
    sender.close()
