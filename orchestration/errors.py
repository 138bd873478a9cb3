"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the exit codes."""


class SweepError(Exception):
    """A problem with the user's input or environment, phrased for the user."""


# exit codes of `python -m orchestration.sweep`
EXIT_OK = 0
EXIT_TRIALS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
