"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class SweepError(Exception):
    """A problem with the user's input or environment, phrased for the user."""
