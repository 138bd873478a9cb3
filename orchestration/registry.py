"""The MLflow Model Registry entry of a sweep: its best trial's model, with the alias `best`.

Every sweep adds a version under its experiment's name (by default the sweep's name). The alias
`best` moves to the new version only when it beats the version the alias points to on the sweep's
metric (the final value of the trial whose model it is), so `models:/<sweep>@best` is the best
model any sweep of that name has found. A --smoke sweep's version never takes the alias from a full
sweep's, and always gives it up to one.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

ALIAS = "best"
METRIC_TAG, MODE_TAG, SCORE_TAG, SMOKE_TAG = "sweep.metric", "sweep.mode", "sweep.score", "sweep.smoke"
MEASURED_TAG = "sweep.measured_with"  # how the score was measured, e.g. "eval_samples=500" (FID)


@dataclass(frozen=True)
class Candidate:
    """A sweep's best model: the best configuration's best seed."""

    model_uri: str
    run_id: str
    metric: str
    mode: str
    score: float
    smoke: bool = False
    measured_with: str = ""  # e.g. "eval_samples=500": scores measured otherwise are not compared with it

    def tags(self, parent_run_id: str, config_id: str) -> dict[str, str]:
        return {METRIC_TAG: self.metric, MODE_TAG: self.mode, SCORE_TAG: repr(self.score),
                MEASURED_TAG: self.measured_with,
                SMOKE_TAG: str(self.smoke).lower(), "sweep.parent_run_id": parent_run_id,
                "sweep.config_id": config_id}


def takes_alias(new: Candidate, current_tags: dict) -> tuple[bool, str]:
    """Whether `new` should hold the alias over the version with `current_tags`, and why."""
    current_smoke = current_tags.get(SMOKE_TAG) == "true"
    if current_smoke != new.smoke:
        return (not new.smoke, "a full sweep's model replaces a --smoke one" if not new.smoke
                else "a --smoke model never replaces a full sweep's")
    if current_tags.get(METRIC_TAG) != new.metric:
        return False, (f"it was scored on {current_tags.get(METRIC_TAG)!r}, this sweep on {new.metric!r}; "
                       "the two cannot be compared")
    if current_tags.get(MEASURED_TAG, new.measured_with) != new.measured_with:
        return False, (f"it was scored with {current_tags[MEASURED_TAG] or 'other settings'}, this sweep with "
                       f"{new.measured_with or 'other settings'}; {new.metric} measured differently cannot be compared")
    try:
        current = float(current_tags.get(SCORE_TAG, "nan"))
    except ValueError:
        current = math.nan
    if math.isnan(current):
        return True, "the current version has no score"
    better = new.score < current if new.mode == "min" else new.score > current
    relation = "beats" if better else "does not beat"
    return better, f"{new.metric} {new.score:.4g} {relation} {current:.4g}"


@contextmanager
def global_tracking_uri(uri: str):
    """MLflow's SQL model registry looks a `models:/m-...` source up through the global tracking URI, not
    its client's, so registering from any store but the default one fails without this. Restored after."""
    import mlflow

    before, env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


def register(client, name: str, candidate: Candidate, parent_run_id: str, config_id: str) -> str:
    """Add `candidate` as a new version of `name`, move the alias if it wins; returns what happened."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description=f"The best model of the sweeps named {name!r}; alias "
                                                          f"{ALIAS!r} is the best so far.")
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):  # another sweep made it first
            raise
    model_id = candidate.model_uri[len("models:/"):]
    with global_tracking_uri(client.tracking_uri):
        version = client.create_model_version(name, candidate.model_uri, run_id=candidate.run_id,
                                              tags=candidate.tags(parent_run_id, config_id), model_id=model_id).version
    try:
        current = client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        current = None
    if current is None:
        client.set_registered_model_alias(name, ALIAS, version)
        return f"registered model {name!r} version {version}, alias {ALIAS!r} (the first)"
    move, why = takes_alias(candidate, current.tags)
    added = f"registered model {name!r} version {version}; alias {ALIAS!r}"
    if move:
        client.set_registered_model_alias(name, ALIAS, version)
        return f"{added} moved from version {current.version}: {why}"
    return f"{added} stays on version {current.version}: {why}"
