"""The small interface between the orchestration core and an algorithm family.

A family is a package `algorithms.<name>` exposing `FAMILY = Family(...)`. The core finds
it by name, so adding a family needs a new package and a YAML file, and no core edits.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from orchestration.errors import SweepError
from orchestration.params import Param


class Experiment(Protocol):
    """One trial's training state, driven one Tune iteration at a time by the core."""

    def __init__(self, config: dict) -> None: ...

    def step(self) -> dict[str, float]:
        """Train for one iteration and return metrics named `train/...`, `eval/...`."""

    def save(self, directory: Path) -> None:
        """Write everything needed to continue training into `directory`."""

    def restore(self, directory: Path) -> None:
        """Load what `save` wrote."""

    def describe(self) -> dict[str, float]:
        """Derived numbers worth logging once per trial (e.g. alpha_bar_T)."""

    def write_artifacts(self, directory: Path, final: bool) -> None:
        """Write pictures and files for MLflow; `final` is True at the end of the trial."""

    def export_model(self, directory: Path) -> "ModelExport":
        """The trained model in a form MLflow can log and load without this trial's Tune state;
        `directory` is scratch space for files a pyfunc model carries."""

    # optional: close(self) -> None, to release actors or files when the trial ends
    # optional, for families with `mutable` parameters (population-based training):
    #   hyperparameters(self) -> dict: the live value of each mutable parameter (the optimiser's lr, ...)
    #   apply_hyperparameters(self, values: dict) -> None: change them in place, without restarting


@dataclass
class ModelExport:
    """What `orchestration.models` logs as a trial's MLflow model. `flavor` is "pytorch" (`model` is an
    nn.Module whose forward is the prediction) or "pyfunc" (`model` is an mlflow.pyfunc.PythonModel,
    `artifacts` the files its load_context reads). `description` says what predict takes and returns."""

    flavor: str
    model: object
    signature: object
    input_example: object
    description: str
    artifacts: dict[str, str] | None = None


@dataclass(frozen=True)
class Family:
    """`experiment` is an import path, "package.module:Class", so validating a sweep never imports
    the training code (torch, RLlib) it does not need yet."""

    name: str
    experiment: str
    params: dict[str, Param]
    metrics: tuple[str, ...]
    default_metric: str
    default_mode: str
    budget_param: str = "iterations"
    smoke: dict = field(default_factory=dict)
    gpu_fraction: float = 0.25
    check_config: Callable[[dict], str | None] | None = None
    extra_bundles: Callable[[dict], list[dict]] | None = None  # e.g. one CPU per RLlib EnvRunner actor
    # --smoke on a small machine: the largest value of each parameter that fits in `spare` CPUs beside
    # the trial's own, e.g. {"num_env_runners": 1} on 2 cores
    smoke_limits: Callable[[float], dict] | None = None
    # "module:function" that puts a loaded MLflow model to use (`python -m orchestration.use`)
    use: str | None = None
    # parameters the Experiment can change during training (PBT mutates only these)
    mutable: tuple[str, ...] = ()
    # {metric: parameters that set how it is measured}: a metric whose expected value depends on them (FID
    # on its sample count) ranks only runs measured alike, so a sweep must give each of them one value
    measured_with: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def build_experiment(self, config: dict) -> Experiment:
        module, _, cls = self.experiment.partition(":")
        return getattr(importlib.import_module(module), cls)(config)

    def use_function(self) -> Callable:
        module, _, name = self.use.partition(":")
        return getattr(importlib.import_module(module), name)

    def resolve(self, config: dict) -> dict:
        """Defaults filled in for every parameter the trial config leaves out."""
        return {**{k: p.default for k, p in self.params.items()}, **config}

    def bundles(self, config: dict, cpus: float, gpus: float) -> list[dict]:
        """A trial's placement-group bundles: its own CPUs and GPU share, then the family's extra
        bundles (one CPU per remote RLlib EnvRunner). Tune places trials by these, and the sweep
        checks them against the cluster before it starts."""
        extra = self.extra_bundles(self.resolve(config)) if self.extra_bundles else []
        return [{"CPU": cpus, "GPU": gpus}, *extra]


def available_families() -> list[str]:
    import algorithms

    return sorted(m.name for m in pkgutil.iter_modules(algorithms.__path__) if m.ispkg)


def load_family(name: str) -> Family:
    """Import `algorithms.<name>` and return its FAMILY, or fail with the known names."""
    if not name.isidentifier():
        raise SweepError(f"unknown family {name!r}; available: {', '.join(available_families())}")
    try:
        module = importlib.import_module(f"algorithms.{name}")
    except ModuleNotFoundError as err:
        if err.name in (f"algorithms.{name}", "algorithms"):
            raise SweepError(f"unknown family {name!r}; available: {', '.join(available_families())}") from None
        raise
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, Family):
        raise SweepError(f"algorithms.{name} does not define FAMILY = Family(...)")
    return family
