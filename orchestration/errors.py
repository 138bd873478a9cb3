"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the exit codes."""


class SweepError(Exception):
    """A problem with the user's input or environment, phrased for the user."""


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
EXIT_STALLED = 3
EXIT_INTERRUPTED = 130
