"""Runs one CleanRL script unchanged, under the benchmark's episode clock (not a test).

bench/vs_cleanrl.py starts this with CleanRL's own interpreter (its venv pins gymnasium 0.29):

    python cleanrl_runner.py OUT.json ENV_ID MAX_SECONDS MAX_STEPS SCRIPT [SCRIPT ARGS...]

It only observes: `gymnasium.make` returns each env wrapped in `EpisodeClock` (the wrapper every side
of the RL benchmarks uses), and the run stops once the recorded episodes show a crossing of the env's
target that held for the next 20 episodes, or a cap is hit. The script itself runs as `__main__` with its
own arguments, with one torch thread.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

import gymnasium
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from episode_clock import EpisodeClock, just_held, outcome, target_return  # noqa: E402


class Stop(BaseException):
    """Ends the script from inside env.step (a BaseException, so no `except Exception` in it catches it)."""


def main() -> None:
    out, env_id, max_seconds, max_steps, script, *script_args = sys.argv[1:]
    target, max_seconds, max_steps = target_return(env_id), float(max_seconds), int(max_steps)
    torch.set_num_threads(1)
    make = gymnasium.make
    gymnasium.make = lambda *args, **kwargs: EpisodeClock(make(*args, **kwargs))

    def check(episodes):
        elapsed = time.perf_counter() - EpisodeClock.started
        if just_held(episodes, target) or elapsed > max_seconds or EpisodeClock.steps >= max_steps:
            raise Stop

    EpisodeClock.on_episode = check
    sys.argv = [script, *script_args]
    try:
        runpy.run_path(script, run_name="__main__")
    except Stop:
        pass
    stopped = time.perf_counter()
    Path(out).write_text(json.dumps({**outcome(target, stopped), "torch": torch.__version__,
                                     "gymnasium": gymnasium.__version__}))


if __name__ == "__main__":
    main()
