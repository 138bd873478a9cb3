"""Driver errors that are the machine's or the tracking server's become one line; others keep their traceback."""

import errno
import sqlite3

from orchestration.errors import infrastructure_failure, quote


def raised(error, cause=None):
    try:
        try:
            raise cause or error
        except BaseException as inner:
            if cause is None:
                raise
            raise error from inner
    except BaseException as outer:
        return outer


def test_a_full_disk_is_found_anywhere_in_the_exception_chain():
    wrapped = raised(RuntimeError("checkpoint failed"), OSError(errno.ENOSPC, "No space left on device", "/data/x"))
    assert infrastructure_failure(wrapped) == "disk full: [Errno 28] No space left on device: '/data/x'"
    assert infrastructure_failure(sqlite3.OperationalError("database or disk is full")) == \
        "disk full: database or disk is full"


def test_an_unreachable_server_is_named_and_other_errors_are_not_swallowed():
    from mlflow.exceptions import MlflowException

    down = MlflowException("API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/search failed with exception "
                           "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url")
    assert infrastructure_failure(down).startswith("the MLflow tracking server stopped answering")
    assert infrastructure_failure(raised(ValueError("a bug"), KeyError("k"))) is None


def test_quote_cuts_long_values():
    assert quote("abc") == "'abc'" and quote([1, 2]) == "[1, 2]"
    assert len(quote(list(range(10_000)))) < 60 and len(quote("x" * 10_000)) == 200
