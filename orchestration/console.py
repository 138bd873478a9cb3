"""What reaches the terminal: library chatter kept off it, and the sweep's final line kept last on it."""

from __future__ import annotations

import logging
import sys

# loggers whose messages the sweep says better itself
QUIET = {
    # Tune's storage announces every checkpoint, a line per trial per iteration
    "ray.train._internal.storage": logging.WARNING,
    "ray.train.v2._internal.execution.storage": logging.WARNING,
    # MLflow's SQL store logs each database error with its traceback before raising it as an MlflowException,
    # which the sender retries (a locked database) or turns into the trial's one-line failure (a full disk)
    "mlflow.store.db.utils": logging.CRITICAL,
    # MLflow's system-metrics thread warns on every failed write, a multi-line SQL statement every interval
    "mlflow.system_metrics.system_metrics_monitor": logging.ERROR,
}


class OneLineWhenDiskFull(logging.Filter):
    """A library error logged with a full-disk traceback keeps its message and the exception's first line:
    the sweep's last line says which disk, and what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        from orchestration.errors import first_line, is_disk_full, last_error_line, text_says_disk_full

        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if error is not None and is_disk_full(error):
            record.msg, record.args = f"{message}{type(error).__name__}: {first_line(error)}", ()
            record.exc_info = record.exc_text = None
        elif "Traceback (most recent call last)" in message and text_says_disk_full(message):  # one in the text
            record.msg, record.args = f"{message.splitlines()[0]} {last_error_line(message)}", ()
        return True


class NoTunerRestoreHint(logging.Filter):
    """Tune ends an interrupted run with "Resume experiment with: Tuner.restore(...)"; the sweep's own last
    line gives the command that resumes it, with its MLflow runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


FILTERS = {"ray.tune.execution.experiment_state": OneLineWhenDiskFull,
           "ray.train._internal.syncer": OneLineWhenDiskFull, "ray.tune.tune": NoTunerRestoreHint}


def quiet_library_logs() -> None:
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
    for name, kind in FILTERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


def last_word(line: str) -> None:
    """Print the sweep's final line on stderr as the last thing there. Ray forwards its workers' output to
    this terminal from a background thread, late: a trial's dying traceback would follow the line. Ray is
    shut down first (the sweep is over, and Ray's exit handler would do it a moment later anyway)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
