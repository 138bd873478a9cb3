"""Trial models in MLflow's format: logged at the end of every trial, found and loaded again by URI.

A trial's model is an MLflow LoggedModel linked to its run (the run's tag `sweep.model_uri` holds
`models:/<model id>`), so `mlflow.pyfunc.load_model(uri)` loads it with mlflow and this package
installed, without Tune's state. Its metadata names the family and what `predict` takes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from orchestration.errors import SweepError
from orchestration.family import ModelExport
from orchestration.tracking import PARENT_TAG

MODEL_TAG = "sweep.model_uri"
MODEL_NAME = "model"


def pip_requirements() -> list[str]:
    """Pinned to what trained the model. A pyfunc model (diffusion) also needs this package installed,
    where its class lives; a PyTorch model is a torch.export program and needs no code of ours."""
    import mlflow
    import numpy
    import torch

    return [f"mlflow=={mlflow.__version__}", f"torch=={torch.__version__.split('+')[0]}",
            f"numpy=={numpy.__version__}"]


def log_model(client, experiment_id: str, run_id: str, export: ModelExport, family: str, step: int,
              params: dict | None = None) -> str:
    """Log `export` as the run's model at `step` (its iteration); returns the model's URI."""
    import mlflow
    from mlflow.models import Model
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    flavor = {"pytorch": mlflow.pytorch, "pyfunc": mlflow.pyfunc}.get(export.flavor)
    if flavor is None:
        raise ValueError(f"unknown model flavor {export.flavor!r}; allowed: pytorch, pyfunc")
    logged = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id,
                                        params={k: str(v)[:6000] for k, v in (params or {}).items()},
                                        tags={"sweep.family": family})
    # a PyTorch model is not loaded back to predict on its input example: MLflow would do it only to log a
    # warning that quiet_model_logging hides (0.1 s per trial, 0.3 s the first time in a worker);
    # tests/test_models.py loads every family's model and predicts instead. (MLflow's pyfunc flavor
    # refuses the switch.)
    kwargs = ({"pytorch_model": export.model, "validate_serving_input": False} if export.flavor == "pytorch"
              else {"python_model": export.model, "artifacts": export.artifacts})
    with _use_tracking_uri(client.tracking_uri), quiet_model_logging():
        Model.log(artifact_path=None, name=MODEL_NAME, flavor=flavor, run_id=run_id, model_id=logged.model_id,
                  step=step, signature=export.signature, input_example=export.input_example,
                  metadata={"family": family, "predict": export.description},
                  pip_requirements=pip_requirements(), **kwargs)
    uri = f"models:/{logged.model_id}"
    client.set_tag(run_id, MODEL_TAG, uri)
    return uri


@contextlib.contextmanager
def quiet_model_logging():
    """MLflow explains at length, in every trial, how a model could be logged differently (type hints,
    models from code, input validation, a download progress bar); the trial's console keeps errors."""
    names = ("mlflow.pyfunc", "mlflow.models", "mlflow.pytorch", "mlflow.utils.environment",
             "mlflow.store.artifact.artifact_repo")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    progress = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if progress is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = progress


def log_trial_model(client, experiment_id: str, run_id: str, experiment, family: str, step: int,
                    params: dict) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return log_model(client, experiment_id, run_id, experiment.export_model(Path(tmp)), family, step, params)


@dataclass
class ModelSource:
    """A model URI resolved to what produced it."""

    uri: str
    family: str
    run_id: str  # the trial's run
    parent_run_id: str | None  # its sweep's parent run
    experiment_id: str
    version: str | None = None  # registry version, when the URI names one


def resolve(client, uri: str) -> ModelSource:
    """`models:/<name>@<alias>`, `models:/<name>/<version>` or `models:/<model id>` -> its source."""
    from mlflow.exceptions import MlflowException

    if not uri.startswith("models:/"):
        raise SweepError(f"model URI {uri!r}: expected models:/<name>@<alias>, models:/<name>/<version> "
                         "or models:/<model id>")
    target, version = uri[len("models:/"):], None
    try:
        if "@" in target:
            name, alias = target.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in target:
            mv = client.get_model_version(*target.split("/", 1))
        else:
            mv = None
        # a SQLite registry keeps the version's source but not its model_id
        model_id = target if mv is None else mv.model_id or mv.source.removeprefix("models:/")
        version = mv.version if mv is not None else None
        logged = client.get_logged_model(model_id)
    except MlflowException as err:
        raise SweepError(f"no model at {uri}: {str(err.message).splitlines()[0][:200]}") from None
    run = client.get_run(logged.source_run_id)
    return ModelSource(uri, logged.tags.get("sweep.family") or run.data.params.get("family", ""),
                       run.info.run_id, run.data.tags.get(PARENT_TAG), run.info.experiment_id, version)
