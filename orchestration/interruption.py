"""Whether Tune's last run ended because it was interrupted (Ctrl-C, or the SIGUSR1 our guards send).

Tune does not say so: `Tuner.fit()` returns normally, and the saved trial states tell an interruption
apart only while a trial is still PENDING or RUNNING. Interrupted right after a trial finished, before
the searcher made the next one, the state holds nothing but finished trials, and the sweep would report
success with configurations never run (it happened in CI, on a slow object store). What does tell is
Tune's signal handler: `tune.run` installs one function for SIGINT and SIGUSR1, and when it fires it
puts the previous SIGINT handler back; a run that was not interrupted leaves both in place.
"""

from __future__ import annotations

import os
import signal

# ray/tune/tune.py, _setup_signal_catching (Ray 2.60); tests/test_interruption.py checks Ray still works this way
TUNE_HANDLER = "signal_interrupt_tune_run"


def tune_was_interrupted() -> bool:
    """True when the Tune run that just returned in this process ended on SIGINT or SIGUSR1."""
    handler = signal.getsignal(signal.SIGUSR1)  # Tune installs it always and never takes it back
    if getattr(handler, "__name__", None) != TUNE_HANDLER or int(os.getenv("TUNE_DISABLE_SIGINT_HANDLER", "0")):
        return False  # not Tune's driver thread, or Tune left Ctrl-C alone (then it raises KeyboardInterrupt)
    return signal.getsignal(signal.SIGINT) is not handler
