"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the exit codes."""

import re


class SweepError(Exception):
    """A problem with the user's input or environment, phrased for the user."""


def first_line(err: BaseException) -> str:
    """An exception's first line of text (its type's name when it has none): what a one-line message quotes."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def last_error_line(text: str) -> str:
    """What a traceback's text says went wrong, in one line: its last unindented line that says the disk is
    full (SQLAlchemy puts "database or disk is full" on the second line of its message), else its last
    'SomeError: message' line, else its last line."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip() and not line[0].isspace()]
    for line in reversed(lines):
        if text_says_disk_full(line):
            return line[:300]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Unavailable|Exit|Interrupt)\b.*:", line):
            return line[:300]
    return lines[-1][:300] if lines else "no error text"


def quote(value, limit: int = 200) -> str:
    """repr(value) cut to `limit` characters: a message quotes what was wrong, not a 50 MB value."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 6, 6, limit, limit
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# exit codes of `python -m orchestration.sweep`
EXIT_OK = 0
EXIT_TRIALS_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3  # stopped before the end, resumable: a stall, a tracking outage, a full disk
EXIT_INTERRUPTED = 130

# what requests (through urllib3) says when a server cannot be reached, after its own retries
UNREACHABLE_SIGNS = ("Max retries exceeded", "Connection refused", "Failed to establish")


DISK_FULL_SIGNS = ("No space left on device", "database or disk is full", "[Errno 28]")


class SweepStopped(Exception):
    """The sweep stopped before its end, resumably (exit 3); the message is the user's one line."""


def causes(error: BaseException | None, limit: int = 20) -> list[BaseException]:
    """The error and what raised it, following __cause__ / __context__."""
    seen = []
    while error is not None and len(seen) < limit:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def says_disk_full(err: BaseException) -> bool:
    """ENOSPC, or a store saying so in words (SQLite: "database or disk is full")."""
    import errno

    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or text_says_disk_full(str(err))


def text_says_disk_full(text: str) -> bool:
    """A traceback's or message's text saying the disk is full."""
    return any(sign in text for sign in DISK_FULL_SIGNS)


def is_disk_full(error: BaseException) -> bool:
    """A full disk anywhere in the error's chain."""
    return any(says_disk_full(err) for err in causes(error))


def infrastructure_failure(error: BaseException) -> str | None:
    """One line for a driver error that is the machine's or the tracking server's, not the code's: a
    full disk or an MLflow server that stopped answering (after the client's own retries). None for
    anything else, which keeps its traceback."""
    seen = causes(error)
    for err in seen:
        if says_disk_full(err):
            text = str(err)
            return f"disk full: {text.splitlines()[0][:200] if text else type(err).__name__}"
    for err in seen:
        text = str(err)
        if any(sign in text for sign in UNREACHABLE_SIGNS):
            return "the MLflow tracking server stopped answering (after the client's retries)"
    return None
