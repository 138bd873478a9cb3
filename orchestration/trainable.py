"""The one Tune Trainable for every family: drives an Experiment and mirrors it into MLflow.

A trial that runs its full budget logs its final artifacts inside its last `step`, before Tune hears
that it is done: if its node dies before that, Tune retries it, so a finished run always has them.
A class Trainable (not a function) because Tune calls `cleanup` when ASHA stops a trial early,
which is where the final artifacts of such a trial are logged, and because `reset_config` lets Tune
reuse one worker process for trial after trial (`reuse_actors`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ray import tune

from orchestration.console import quiet_library_logs
from orchestration.family import load_family
from orchestration.fault_injection import inject_failure
from orchestration.models import log_trial_model
from orchestration.node_watch import NODE_KEY
from orchestration.overhead import Ledger
from orchestration.tracking import HP_PREFIX, TrackingContext, TrialRun

LATEST_METRICS = "latest_metrics.json"
CHECKPOINT_ORIGIN = "origin.json"  # whose checkpoint this is: PBT restores a trial from another's


def where_am_i() -> dict:
    """Node and process of this trial attempt, so a run shows where it trained (and retried)."""
    import os
    import socket

    import ray

    return {"ray.node_id": ray.get_runtime_context().get_node_id(), "ray.node_ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname(), "pid": os.getpid()}


class SweepTrainable(tune.Trainable):
    def setup(self, config: dict, family_name: str, tracking: TrackingContext, mutations: tuple[str, ...] = (),
              cpu_fallback: bool = False):
        """Only remembers the trial. Its MLflow run and Experiment start at its first step or restore:
        with `reuse_actors`, Tune may construct an actor for a trial and then discard it for a cached
        one, and such an actor must leave no trace in MLflow. `mutations`: the parameters PBT changes
        during training (empty without PBT). `cpu_fallback`: train on the CPU when Ray gave a GPU that
        torch cannot see, instead of failing (`--cpu-fallback`)."""
        self.family = load_family(family_name)
        self.cpu_fallback = cpu_fallback
        self.mutations = tuple(mutations)
        self.resolved = self.family.resolve(config)
        self.max_iterations = int(self.resolved[self.family.budget_param])
        self.tracking = tracking
        self.experiment = self.run = self.node_id = None
        self.started = self.failed = self.finished = False
        self.latest: dict = {}  # every metric's latest value, for Tune
        self.ledger = Ledger()  # seconds this trial spends on MLflow and checkpoints, in its results

    def _start(self) -> None:
        import torch

        from orchestration.placement import describe_device, enforce_gpu_policy, gpu_placement

        if self.started:
            return
        self.started = True
        quiet_library_logs()
        # the trial's own bundle; other bundles belong to its actors (e.g. RLlib EnvRunners)
        cpus = self.trial_resources.head_cpus if self.trial_resources else 1
        torch.set_num_threads(max(1, int(cpus)))
        with self.ledger.timed("tracking"):
            self.run = TrialRun(self.tracking, self.trial_id, self.trial_name, self.resolved)
        try:
            placement, where = gpu_placement(), where_am_i()
            self.node_id = where["ray.node_id"]  # in every result: the driver's NodeWatch follows trials by node
            with self.ledger.timed("tracking"):
                self.run.set_tags({**where, **placement})  # kept even when the policy below stops the trial
                self.run.set_tags(enforce_gpu_policy(placement, self.cpu_fallback))
            self.experiment = self.family.build_experiment(self.resolved)
            if getattr(self.experiment, "device", None) is not None:
                with self.ledger.timed("tracking"):
                    self.run.set_tags({"device.torch": describe_device(self.experiment.device)})
            if self.run.logged_through < 0:
                # step 0 (the untrained model's evaluation and the baselines) is not in MLflow: a new run, or
                # one whose first attempt lost it in a tracking outage. The sender keeps order, so a run
                # holding any step holds step 0. The experiment is not restored yet: this is the same
                # untrained model, seeded as the first attempt was.
                described = self.experiment.describe()
                with self.ledger.timed("tracking"):
                    self.run.log_metrics(described, step=0)
                self._log_artifacts(final=False)
        except BaseException as err:
            self._fail(err)
            raise

    def step(self) -> dict:
        self._start()
        iteration = self.iteration + 1
        done = iteration >= self.max_iterations
        try:
            inject_failure(self.trial_name, iteration)
            metrics = self.experiment.step()
            if iteration > self.run.logged_through:  # a restore from an older checkpoint repeats steps
                with self.ledger.timed("tracking"):
                    self.run.log_metrics({**metrics, **self.run.system_metrics(), **self._live_hyperparameters()},
                                         step=iteration)
            self.latest.update(metrics)
            if done:
                self._log_final(iteration)
                with self.ledger.timed("tracking"):
                    self.run.finish("FINISHED")
                self.finished = True
        except BaseException as err:
            self._fail(err)
            raise
        # MLflow records each metric at the iteration it was measured (an evaluation every K iterations,
        # say); Tune's schedulers and searchers need every metric in every result, so they see its latest.
        return {**self.latest, **self.ledger.results(), "mlflow_run_id": self.run.run_id, "done": done,
                NODE_KEY: self.node_id}

    def save_checkpoint(self, checkpoint_dir: str):
        inject_failure(self.trial_name, self.iteration, "checkpoint")
        with self.ledger.timed("checkpoints"):
            self.experiment.save(Path(checkpoint_dir))
            (Path(checkpoint_dir) / LATEST_METRICS).write_text(json.dumps(self.latest))
            origin = {"trial_id": self.trial_id, "run_id": self.run.run_id, "iteration": self.iteration,
                      "hyperparameters": {k: self.resolved[k] for k in self.mutations}}
            (Path(checkpoint_dir) / CHECKPOINT_ORIGIN).write_text(json.dumps(origin))
        with self.ledger.timed("tracking"):
            self.run.flush()
        return None

    def load_checkpoint(self, checkpoint_dir: str):
        self._start()
        self.experiment.restore(Path(checkpoint_dir))
        latest = Path(checkpoint_dir) / LATEST_METRICS
        self.latest = json.loads(latest.read_text()) if latest.exists() else {}
        if self.mutations:
            # a checkpoint holds the optimiser's lr (and so on) it was saved with: this trial's own values,
            # possibly just mutated by PBT, take their place
            self.experiment.apply_hyperparameters({k: self.resolved[k] for k in self.mutations})
            origin = Path(checkpoint_dir) / CHECKPOINT_ORIGIN
            source = json.loads(origin.read_text()) if origin.exists() else {}
            if source.get("trial_id") not in (None, self.trial_id):
                self.run.record_exploit(source, {k: self.resolved[k] for k in self.mutations})

    def _live_hyperparameters(self) -> dict:
        """hp/<name>: the value each PBT-mutable parameter has in the experiment right now."""
        if not self.mutations:
            return {}
        live = self.experiment.hyperparameters()
        return {f"{HP_PREFIX}{k}": live[k] for k in self.mutations if k in live}

    def reset_config(self, new_config: dict) -> bool:
        """Tune's `reuse_actors`: end the previous trial as `cleanup` would, then set up the next one in
        this same process, which saves a new worker process and its imports per trial."""
        self.cleanup()
        self.setup(new_config)  # `tune.with_parameters` wraps setup and passes the family and tracking again
        return True

    def cleanup(self):
        """Tune calls this when the trial completes, when a scheduler stops it and when the sweep is
        interrupted. In the last two cases the latest artifacts and checkpoint are logged here; the
        driver, which knows which case it was, closes the run."""
        if self.failed or not self.started:
            return
        if self.mutations and not self.finished:
            # PBT pauses trials at every perturbation and continues them later, perhaps in another
            # process and from another trial's checkpoint: a pause, not an end
            self.run.pause()
        elif not self.finished:
            self._log_final(self.iteration)
            self.run.flush()
        self._close()

    def _log_final(self, iteration: int) -> None:
        """Pictures, the checkpoint (to resume from) and the MLflow model (to use), as of `iteration`."""
        self._log_artifacts(final=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.experiment.save(Path(tmp))
            with self.ledger.timed("artifacts"):
                self.run.log_artifacts(Path(tmp), "checkpoint")
        with self.ledger.timed("model"):
            log_trial_model(self.run.client, self.tracking.experiment_id, self.run.run_id, self.experiment,
                            self.family.name, step=iteration, params=self.resolved)

    def _close(self) -> None:
        if self.run is not None:
            self.run.close()
        close = getattr(self.experiment, "close", None)
        if close is not None:
            close()

    def _log_artifacts(self, final: bool) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            self.experiment.write_artifacts(Path(tmp), final=final)
            with self.ledger.timed("artifacts"):
                self.run.log_artifacts(Path(tmp))

    def _fail(self, err: BaseException) -> None:
        self.failed = True
        try:
            self.run.fail(err)
            self._close()
        except Exception:  # the original error matters more than a logging or shutdown problem
            pass
