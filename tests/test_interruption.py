"""Ctrl-C between two trials: Tune saves only finished trials (the searcher had not made the next one), so
the saved states alone make an interrupted sweep look complete. `tune_was_interrupted` tells it, from a real
Tune run interrupted the way CI's object-store sweep was (tests/test_object_store.py exited 0 there)."""

import os
import signal

import pytest
import ray
from ray import tune

from orchestration.interruption import tune_was_interrupted
from orchestration.results.rows import tune_outcomes

pytestmark = [pytest.mark.slow, pytest.mark.long]


class CtrlCWhenATrialCompletes(tune.Callback):
    """Ctrl-C in the driver as soon as the first trial completes, before the next one is made."""

    def on_trial_complete(self, iteration, trials, trial, **info):
        os.kill(os.getpid(), signal.SIGINT)


def three_trials_one_at_a_time(storage, callbacks):
    tuner = tune.Tuner(lambda config: {"score": config["x"]}, param_space={"x": tune.grid_search([1, 2, 3])},
                       tune_config=tune.TuneConfig(max_concurrent_trials=1),
                       run_config=tune.RunConfig(storage_path=str(storage), callbacks=callbacks, verbose=0))
    return tuner.fit()


def test_a_ctrl_c_between_trials_is_told_apart_from_a_finished_run(tmp_path):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = three_trials_one_at_a_time(tmp_path / "interrupted", [CtrlCWhenATrialCompletes()])
        interrupted = tune_was_interrupted()
        outcomes = tune_outcomes(results.experiment_path, lambda config: 1)
        assert list(outcomes.values()) == ["finished"]  # what the saved states say: nothing unfinished
        assert interrupted

        results = three_trials_one_at_a_time(tmp_path / "complete", [])
        assert not tune_was_interrupted()
        assert sorted(tune_outcomes(results.experiment_path, lambda config: 1).values()) == ["finished"] * 3
    finally:
        ray.shutdown()
