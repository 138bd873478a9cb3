"""The one Tune Trainable for every family: drives an Experiment and mirrors it into MLflow.

A class Trainable (not a function) because Tune calls `cleanup` when ASHA stops a trial early,
which is where the final artifacts of such a trial are logged.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ray import tune

from orchestration.family import load_family
from orchestration.fault_injection import inject_failure
from orchestration.tracking import TrackingContext, TrialRun


def where_am_i() -> dict:
    """Node and process of this trial attempt, so a run shows where it trained (and retried)."""
    import os
    import socket

    import ray

    return {"ray.node_id": ray.get_runtime_context().get_node_id(), "ray.node_ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname(), "pid": os.getpid()}


class SweepTrainable(tune.Trainable):
    def setup(self, config: dict, family_name: str, tracking: TrackingContext):
        import torch

        self.family = load_family(family_name)
        self.resolved = self.family.resolve(config)
        self.max_iterations = int(self.resolved[self.family.budget_param])
        # the trial's own bundle; other bundles belong to its actors (e.g. RLlib EnvRunners)
        cpus = self.trial_resources.head_cpus if self.trial_resources else 1
        torch.set_num_threads(max(1, int(cpus)))
        self.failed = False
        self.run = TrialRun(tracking, self.trial_id, self.trial_name, self.resolved)
        self.run.set_tags(where_am_i())
        try:
            self.experiment = self.family.build_experiment(self.resolved)
            if not self.run.resumed:
                self.run.log_metrics(self.experiment.describe(), step=0)
                self._log_artifacts(final=False)
        except BaseException as err:
            self._fail(err)
            raise

    def step(self) -> dict:
        try:
            inject_failure(self.trial_name, self.iteration + 1)
            metrics = self.experiment.step()
        except BaseException as err:
            self._fail(err)
            raise
        iteration = self.iteration + 1
        self.run.log_metrics(metrics, step=iteration)
        return {**metrics, "mlflow_run_id": self.run.run_id, "done": iteration >= self.max_iterations}

    def save_checkpoint(self, checkpoint_dir: str):
        self.experiment.save(Path(checkpoint_dir))
        self.run.flush()
        return None

    def load_checkpoint(self, checkpoint_dir: str):
        self.experiment.restore(Path(checkpoint_dir))

    def cleanup(self):
        """Log the latest artifacts and checkpoint. Tune calls this when the trial completes, when a
        scheduler stops it and when the sweep is interrupted; the run is closed here only in the first
        case, and by the driver (which knows which case it was) otherwise."""
        if self.failed or not hasattr(self, "experiment"):
            return
        self._log_artifacts(final=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.experiment.save(Path(tmp))
            self.run.log_artifacts(Path(tmp), "checkpoint")
        if self.iteration >= self.max_iterations:
            self.run.finish("FINISHED")
        else:
            self.run.flush()
        self._close()

    def _close(self) -> None:
        close = getattr(getattr(self, "experiment", None), "close", None)
        if close is not None:
            close()

    def _log_artifacts(self, final: bool) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            self.experiment.write_artifacts(Path(tmp), final=final)
            self.run.log_artifacts(Path(tmp))

    def _fail(self, err: BaseException) -> None:
        self.failed = True
        try:
            self.run.fail(err)
            self._close()
        except Exception:  # the original error matters more than a logging or shutdown problem
            pass
