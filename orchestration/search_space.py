"""Search-space files (W&B-sweep-like YAML) loaded, fully validated and mapped to Tune.

Everything is checked here, before Ray starts: the file's keys, the family, the metric, every parameter
value or range against the family's specs, and, through their plug-ins (`orchestration.search`), the
method's and the scheduler's parts. Errors name the file and the key:
`diffusion.yaml: parameters.timesteps.values[1]: ...`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from orchestration.errors import SweepError, quote
from orchestration.family import Family, load_family
from orchestration.params import Float, Int, Param
from orchestration.search import EXTENSIONS, METHODS, SCHEDULERS
from orchestration.search.base import SEED, Method, Scheduler

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL_KEYS = {"family", "description", "metric", "method", "num_samples", "seeds", "scheduler", "parameters",
                  *EXTENSIONS}
GOALS = {"minimize": "min", "maximize": "max"}
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform")
MAX_GRID_CHECKS = 20_000


def search_dirs() -> list[Path]:
    """Sweep names are looked up in ./search_spaces first, then in the project's own."""
    dirs = [Path.cwd() / "search_spaces", PACKAGE_ROOT / "search_spaces"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def available_sweeps() -> list[str]:
    return sorted({p.stem for d in search_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def find_sweep_file(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise SweepError(f"search space file {candidate} does not exist")
        return candidate
    for directory in search_dirs():
        path = directory / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    raise SweepError(f"unknown sweep {name_or_path!r}; available: {', '.join(available_sweeps()) or 'none'}")


@dataclass
class SweepSpec:
    name: str
    path: Path
    family: Family
    metric: str
    mode: str
    method: str
    num_samples: int
    scheduler: dict
    parameters: dict[str, dict]
    description: str = ""
    raw: dict = field(default_factory=dict)
    seeds: int | None = None  # replicates: every configuration runs with seeds seed_offset .. + seeds - 1
    seed_offset: int = 0
    race: dict | None = None  # `race:`: seeds 0..max_seeds-1 go only to configurations still in the running

    @property
    def search_method(self) -> Method:
        return METHODS[self.method]

    @property
    def search_scheduler(self) -> Scheduler:
        return SCHEDULERS[self.scheduler["type"]]

    @property
    def mutations(self) -> tuple[str, ...]:
        """Parameters the scheduler changes during a trial (PBT's mutations; none otherwise)."""
        return self.search_scheduler.mutations(self.scheduler)

    @property
    def swept_keys(self) -> list[str]:
        """Parameters that differ between trials, in file order, the seed last (used for names and reports)."""
        keys = [k for k, v in self.parameters.items() if "value" not in v]
        return keys + [SEED] if self.seeds else keys

    @property
    def config_keys(self) -> list[str]:
        """The swept parameters that make a configuration: all but the seed."""
        return [k for k in self.swept_keys if k != SEED]

    def seed_values(self) -> list[int]:
        return list(range(self.seed_offset, self.seed_offset + (self.seeds or 1)))

    def with_seeds(self, seeds: int | None, offset: int | None) -> "SweepSpec":
        """A copy with replicates from the command line (--seeds, --seed-offset); they replace any
        `seed` parameter of the file."""
        if self.search_method.seeds_refusal:
            raise SweepError(f"--seeds: {self.search_method.seeds_refusal}")
        if seeds and self.race:
            raise SweepError(f"--seeds: {self.path.name} races up to race.max_seeds ({self.race['max_seeds']}) "
                             "seeds; change max_seeds there (--seed-offset picks other seeds)")
        seeds = seeds or self.seeds or 1
        offset = self.seed_offset if offset is None else offset
        params = {k: v for k, v in self.parameters.items() if k != SEED}
        return SweepSpec(**{**self.__dict__, "parameters": params, "seeds": seeds, "seed_offset": offset})

    def configurations(self, sample_seed: int = 0) -> list[dict]:
        """The configurations a replicated sweep runs (swept values without the seed): the grid, or
        `num_samples` random draws. Distributions are drawn once per configuration, with a fixed
        generator, so every seed of a configuration gets the same values."""
        rng = np.random.default_rng(sample_seed)
        crossed = self.search_method.crosses_values
        grid = {k: v["values"] for k, v in self.parameters.items() if "values" in v and crossed}
        drawn = [k for k in self.config_keys if k not in grid]
        combos = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
        count = len(combos) if crossed else self.num_samples
        return [{**combos[i % len(combos)], **{k: _draw(self.parameters[k], rng) for k in drawn}}
                for i in range(count)]

    def with_overrides(self, overrides: dict[str, Any]) -> "SweepSpec":
        """A copy where each override becomes a constant (used by --smoke and --set)."""
        params = dict(self.parameters)
        for key, value in overrides.items():
            if key == SEED and self.seeds:
                raise SweepError(f"{self.path.name}: override seed: this sweep runs seeds "
                                 f"{self.seed_offset}..{self.seed_offset + self.seeds - 1}; use --seed-offset")
            _check_value(self.family.params, key, value, f"{self.path.name}: override {key}")
            if key in self.mutations:
                raise SweepError(f"{self.path.name}: override {key}: PBT mutates it (scheduler.mutations); "
                                 "drop it there to fix it")
            params[key] = {"value": value}
        copy = SweepSpec(**{**self.__dict__, "parameters": params})
        _check_combinations(copy)
        _check_measurement(copy)
        return copy

    def budget(self) -> int:
        """The largest number of Tune iterations any trial can run."""
        entry = self.parameters.get(self.family.budget_param)
        if entry is None:
            return int(self.family.params[self.family.budget_param].default)
        if "value" in entry:
            return int(entry["value"])
        if "values" in entry:
            return int(max(entry["values"]))
        return int(entry["max"])

    def grid_points(self) -> list[dict]:
        """Every combination of the listed `values`, `num_samples` times over: a grid sweep's trials
        (distributions and constants left out)."""
        grid = {k: v["values"] for k, v in self.parameters.items() if "values" in v}
        return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] * self.num_samples

    def param_space(self) -> dict:
        """Tune's param_space: grid_search / choice / distributions, constants as they are. With
        replicates every trial's swept values are given explicitly, `configurations()` crossed with
        the seeds (see tuning.build_search_alg), and override these entries."""
        from ray import tune

        space = {SEED: tune.grid_search(self.seed_values())} if self.seeds else {}
        for key, entry in self.parameters.items():
            if "value" in entry:
                space[key] = entry["value"]
            elif "values" in entry:
                values = entry["values"]
                space[key] = tune.grid_search(values) if self.search_method.crosses_values else tune.choice(values)
            elif entry["distribution"] == "uniform":
                space[key] = tune.uniform(entry["min"], entry["max"])
            elif entry["distribution"] == "log_uniform":
                space[key] = tune.loguniform(entry["min"], entry["max"])
            else:
                space[key] = tune.randint(entry["min"], entry["max"] + 1)
        return space


def config_id(config: dict) -> str:
    """A short stable id of a configuration (swept values without the seed): the tag that finds its
    replicates in MLflow. Values are hashed as text, so a value read back from MLflow matches."""
    text = json.dumps({k: str(v) for k, v in sorted(config.items())})
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _draw(entry: dict, rng: np.random.Generator):
    """One value of a swept parameter: a listed value or a draw from its distribution."""
    if "values" in entry:
        return entry["values"][int(rng.integers(len(entry["values"])))]
    low, high = entry["min"], entry["max"]
    if entry["distribution"] == "uniform":
        return float(rng.uniform(low, high))
    if entry["distribution"] == "log_uniform":
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return int(rng.integers(low, high + 1))


def _check_value(specs: dict[str, Param], key: str, value: Any, where: str) -> None:
    if key not in specs:
        raise SweepError(f"{where}: unknown parameter {key!r}; allowed: {', '.join(sorted(specs))}")
    reason = specs[key].check(value)
    if reason:
        raise SweepError(f"{where}: {reason}")


def _validate_parameter(spec: Param, key: str, entry: Any, where: str) -> dict:
    if not isinstance(entry, dict):
        raise SweepError(f"{where}: must be a mapping with 'value', 'values' or 'distribution'")
    kinds = [k for k in ("value", "values", "distribution") if k in entry]
    if len(kinds) != 1:
        raise SweepError(f"{where}: give exactly one of 'value', 'values' or 'distribution'")
    kind = kinds[0]
    allowed = {"value": {"value"}, "values": {"values"}, "distribution": {"distribution", "min", "max"}}[kind]
    extra = set(entry) - allowed
    if extra:
        raise SweepError(f"{where}: unexpected key(s) {', '.join(sorted(extra))} next to '{kind}'")
    specs = {key: spec}
    if kind == "value":
        _check_value(specs, key, entry["value"], f"{where}.value")
    elif kind == "values":
        values = entry["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}.values: must be a non-empty list")
        for i, value in enumerate(values):
            _check_value(specs, key, value, f"{where}.values[{i}]")
    else:
        dist = entry["distribution"]
        if dist not in DISTRIBUTIONS:
            raise SweepError(f"{where}.distribution: must be one of {', '.join(DISTRIBUTIONS)}; got {quote(dist)}")
        if not isinstance(spec, Float):
            raise SweepError(f"{where}: a distribution needs a numeric parameter; use 'values'")
        if dist == "int_uniform" and not isinstance(spec, Int):
            raise SweepError(f"{where}: int_uniform needs an integer parameter")
        if dist != "int_uniform" and isinstance(spec, Int):
            raise SweepError(f"{where}: {key} is an integer; use int_uniform or 'values'")
        for bound in ("min", "max"):
            if bound not in entry:
                raise SweepError(f"{where}: distribution {dist} needs '{bound}'")
            _check_value(specs, key, entry[bound], f"{where}.{bound}")
        if entry["min"] >= entry["max"]:
            raise SweepError(f"{where}: min must be below max, got min={entry['min']} max={entry['max']}")
        if dist == "log_uniform" and entry["min"] <= 0:
            raise SweepError(f"{where}: log_uniform needs min > 0, got {entry['min']}")
    return entry


def _validate_scheduler(raw: Any, where: str) -> dict:
    """The `scheduler:` block's type and keys; the scheduler's plug-in checks their values."""
    if raw is None:
        return {"type": "fifo"}
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict) or "type" not in raw:
        raise SweepError(f"{where}: must be a mapping with 'type' ({', '.join(SCHEDULERS)})")
    kind = raw["type"]
    if kind not in SCHEDULERS:
        raise SweepError(f"{where}.type: must be one of {', '.join(SCHEDULERS)}; got {quote(kind)}")
    extra = set(raw) - SCHEDULERS[kind].keys - {"type"}
    if extra:
        raise SweepError(f"{where}: unknown key(s) {', '.join(sorted(extra))} for {kind}; "
                         f"allowed: {', '.join(sorted(SCHEDULERS[kind].keys)) or 'none'}")
    return dict(raw)


def _candidates(entry: dict) -> list:
    if "value" in entry:
        return [entry["value"]]
    if "values" in entry:
        return entry["values"]
    return [entry["min"], entry["max"]]


def _check_combinations(spec: SweepSpec) -> None:
    """Run the family's cross-parameter check on every combination of listed values."""
    if spec.family.check_config is None:
        return
    keys = list(spec.parameters)
    combos = itertools.product(*(_candidates(spec.parameters[k]) for k in keys))
    for combo in itertools.islice(combos, MAX_GRID_CHECKS):
        config = spec.family.resolve(dict(zip(keys, combo)))
        reason = spec.family.check_config(config)
        if reason:
            shown = ", ".join(f"{k}={v}" for k, v in zip(keys, combo) if k in spec.swept_keys)
            raise SweepError(f"{spec.path.name}: {reason}" + (f" (for {shown})" if shown else ""))


def _check_measurement(spec: SweepSpec) -> None:
    """A metric measured differently in different configurations (FID from 300 or from 500 samples)
    cannot rank them: each parameter that sets how the sweep's metric is measured takes one value."""
    for key in spec.family.measured_with.get(spec.metric, ()):
        entry = spec.parameters.get(key, {})
        if entry and "value" not in entry and len({repr(v) for v in entry.get("values", [None, ()])}) > 1:
            raise SweepError(f"{spec.path.name}: parameters.{key}: {spec.metric} depends on how it is measured "
                             f"({key}), so runs measured with different {key} cannot be ranked against each "
                             f"other; give {key} one value")


MAX_YAML_VALUES = 100_000


def load_yaml(text: str, where: str):
    """yaml.safe_load that refuses a document whose aliases expand to more than MAX_YAML_VALUES
    values (a "billion laughs" file): PyYAML shares aliased objects, but anything that prints or walks
    the result would expand them. The size is counted on the node graph, each node once."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def size(n) -> int:
            if id(n) not in sizes:
                children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else \
                    n.value if isinstance(n, yaml.SequenceNode) else []
                sizes[id(n)] = 1 + sum(size(c) for c in children)
            return sizes[id(n)]

        if size(node) > MAX_YAML_VALUES:
            raise SweepError(f"{where}: the YAML expands to more than {MAX_YAML_VALUES:,} values "
                             "(nested aliases?); a search space needs a few dozen")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_sweep(name_or_path: str) -> SweepSpec:
    """Find, parse and validate a sweep; raise SweepError with a one-line message on any problem."""
    path = find_sweep_file(name_or_path)
    where = path.name
    try:
        raw = load_yaml(path.read_text(), where)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise SweepError(f"{where}: malformed YAML{line}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{where}: must be a YAML mapping with keys {', '.join(sorted(TOP_LEVEL_KEYS))}")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    if "family" not in raw:
        raise SweepError(f"{where}: missing 'family'")
    if not isinstance(raw.get("description", ""), str):
        raise SweepError(f"{where}: description: must be a string, got {quote(raw['description'])}")
    try:
        family = load_family(str(raw["family"]))
    except SweepError as err:
        raise SweepError(f"{where}: family: {err}") from None

    metric = raw.get("metric") or {}
    if not isinstance(metric, dict):
        raise SweepError(f"{where}: metric must be a mapping with 'name' and 'goal'")
    metric_name = metric.get("name", family.default_metric)
    if metric_name not in family.metrics:
        raise SweepError(f"{where}: metric.name: {family.name} reports {', '.join(family.metrics)}; "
                         f"got {quote(metric_name)}")
    goal = metric.get("goal", {"min": "minimize", "max": "maximize"}[family.default_mode])
    if goal not in GOALS:
        raise SweepError(f"{where}: metric.goal: must be minimize or maximize; got {quote(goal)}")

    method = raw.get("method", "grid")
    if not isinstance(method, str) or method not in METHODS:
        raise SweepError(f"{where}: method: must be one of {', '.join(METHODS)}; got {quote(method)}")
    num_samples = raw.get("num_samples", 1)
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise SweepError(f"{where}: num_samples: must be an integer >= 1, got {quote(num_samples)}")
    seeds = raw.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            raise SweepError(f"{where}: seeds: must be an integer >= 1, got {quote(seeds)}")
        if SEED in (raw.get("parameters") or {}):
            raise SweepError(f"{where}: parameters.seed: drop it; `seeds: {seeds}` runs every configuration "
                             f"with seeds 0..{seeds - 1}")
        if SEED not in family.params:
            raise SweepError(f"{where}: seeds: family {family.name} has no seed parameter")
        refusal = METHODS[method].replicates_refusal(num_samples, seeds)
        if refusal:
            raise SweepError(f"{where}: num_samples: {refusal}")
        if METHODS[method].seeds_refusal:
            raise SweepError(f"{where}: seeds: {METHODS[method].seeds_refusal}")

    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SweepError(f"{where}: parameters must be a mapping of parameter name to its values")
    checked = {}
    for key, entry in parameters.items():
        if key not in family.params:
            raise SweepError(f"{where}: parameters.{key}: unknown parameter for {family.name}; "
                             f"allowed: {', '.join(sorted(family.params))}")
        checked[key] = _validate_parameter(family.params[key], key, entry, f"{where}: parameters.{key}")

    METHODS[method].check(checked, where)
    scheduler = _validate_scheduler(raw.get("scheduler"), f"{where}: scheduler")
    SCHEDULERS[scheduler["type"]].check(scheduler, family, checked, METHODS[method], seeds, f"{where}: scheduler")
    race = None
    if "race" in raw:
        race = EXTENSIONS["race"].check(raw["race"], family, METHODS[method], scheduler, seeds, checked,
                                        f"{where}: race")
        seeds = race["max_seeds"]
        refusal = METHODS[method].replicates_refusal(num_samples, seeds)
        if refusal:
            raise SweepError(f"{where}: num_samples: {refusal}")

    spec = SweepSpec(name=path.stem, path=path.resolve(), family=family, metric=metric_name, mode=GOALS[goal],
                     method=method, num_samples=num_samples,
                     scheduler=scheduler,
                     parameters=checked, description=str(raw.get("description", "")), raw=raw, seeds=seeds,
                     race=race)
    _check_combinations(spec)
    _check_measurement(spec)
    return spec
