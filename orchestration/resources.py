"""Can this cluster ever run one trial? Checked after Ray starts and before any run or trial exists.

Tune waits forever on a trial that no node can hold (it warns every few seconds that resources are
insufficient), so the sweep compares each trial's placement group, as `Family.bundles` builds it for
Tune, with what the cluster has or could have:

- every bundle must fit on one node: a live node, or, on an autoscaling cluster started by the
  cluster launcher, one of the node types in `~/ray_bootstrap_config.yaml` (the file Tune itself uses
  to recognise such a cluster);
- on a fixed cluster the bundles together must fit in the cluster's total (Tune's placement groups
  use PACK, which may spread bundles over nodes).

Only what surely cannot run is refused; a node type without declared resources is taken to fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestration.errors import SweepError

BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")
KINDS = ("CPU", "GPU")


@dataclass
class ClusterShape:
    nodes: list[dict]  # resources of each live node
    node_types: list[dict]  # resources of each node type the autoscaler may launch
    autoscaling: bool

    def total(self) -> dict:
        return {k: sum(n.get(k, 0) for n in self.nodes) for k in KINDS}

    def largest_cpus(self) -> float:
        """CPUs of the largest node there is or could be (a declared node type)."""
        return max([n.get("CPU", 0) for n in self.nodes + [t for t in self.node_types if t]], default=0)


def cluster_shape() -> ClusterShape:
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    node_types, autoscaling = autoscaler_node_types(BOOTSTRAP_CONFIG.expanduser())
    return ClusterShape(nodes, node_types, autoscaling)


def autoscaler_node_types(path: Path) -> tuple[list[dict], bool]:
    """Resources of the node types a cluster-launcher cluster can start (None: undeclared)."""
    if not path.exists():
        return [], False
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return [], True
    types = (config.get("available_node_types") or {}).values()
    return [t.get("resources") or None for t in types if t.get("max_workers", 1) or t.get("min_workers", 0)], True


def _fits(bundle: dict, node: dict | None) -> bool:
    return node is None or all(bundle.get(k, 0) <= node.get(k, 0) for k in KINDS)


def _describe(resources: dict) -> str:
    return " + ".join(f"{resources.get(k, 0):g} {k}" for k in KINDS)


def unsatisfiable(bundles: list[dict], cluster: ClusterShape) -> str | None:
    """Why no trial with these bundles can ever be placed on this cluster, or None."""
    shapes = cluster.nodes + cluster.node_types
    for bundle in bundles:
        if not any(_fits(bundle, node) for node in shapes):
            biggest = max(cluster.nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
            return f"no node can hold {_describe(bundle)} (the largest has {_describe(biggest)})"
    need = {k: sum(b.get(k, 0) for b in bundles) for k in KINDS}
    have = cluster.total()
    if not cluster.autoscaling and any(need[k] > have[k] for k in KINDS):
        return f"it asks for {_describe(need)} in all, the cluster has {_describe(have)}"
    return None


def fit_smoke(spec, spare_cpus: float):
    """--smoke is a wiring check that must run where the user is: lower every parameter the family
    limits (RL: remote EnvRunners) to what one node holds beside the trial's own CPUs."""
    limits = spec.family.smoke_limits(spare_cpus) if spec.family.smoke_limits else {}
    lowered = {}
    for key, limit in limits.items():
        entry = spec.parameters.get(key, {"value": spec.family.params[key].default})
        values = entry.get("values", [entry.get("value")])
        if any(v is None or v > limit for v in values):
            lowered[key] = min([limit, *(v for v in values if v is not None)])
    if lowered:
        print("[sweep] --smoke on this machine: " + ", ".join(f"{k}={v}" for k, v in lowered.items()))
    return spec.with_overrides(lowered) if lowered else spec


def trial_shapes(spec, cpus: float, gpus: float) -> dict[str, list[dict]]:
    """The distinct placement groups the sweep's trials ask for, each labelled by the first
    configuration that asks for it."""
    constants = {k: v["value"] for k, v in spec.parameters.items() if "value" in v}
    shapes: dict[str, list[dict]] = {}
    for point in spec.configurations():
        bundles = spec.family.bundles({**constants, **point}, cpus, gpus)
        if bundles not in shapes.values():
            label = ",".join(f"{k}={v}" for k, v in point.items()) or "every trial"
            shapes[label] = bundles
    return shapes


def trials_at_once(shapes: dict[str, list[dict]], cluster: ClusterShape) -> int:
    """How many trials of the largest shape the cluster's live nodes hold together (at least 1): the slots
    a race keeps busy. Counted on totals, so a trial split over nodes is counted optimistically."""
    total = cluster.total()
    counts = []
    for bundles in shapes.values():
        need = {k: sum(b.get(k, 0) for b in bundles) for k in KINDS}
        counts.append(min(int(total[k] // need[k]) for k in KINDS if need[k] > 0) if any(need.values()) else 1)
    return max(1, min(counts, default=1))


def check_trials_fit(shapes: dict[str, list[dict]], cluster: ClusterShape) -> None:
    """Raise a one-line SweepError when some trial shape can never run."""
    for label, bundles in shapes.items():
        reason = unsatisfiable(bundles, cluster)
        if reason:
            own, extra = bundles[0], bundles[1:]
            parts = f"{_describe(own)} for the trial" + (f", {len(extra)} x {_describe(extra[0])} for EnvRunners"
                                                         if extra else "")
            lower = "--set num_env_runners=N, " if extra else ""
            raise SweepError(f"a trial ({label}: {parts}) can never start: {reason}; ask for less with "
                             f"{lower}--cpus-per-trial or --gpus-per-trial, or use a bigger cluster with --address")


def asks_for_cuda(spec) -> bool:
    """Does any trial of the sweep set `device: cuda` (a fixed value or one of the swept ones)?"""
    if "device" not in spec.family.params:
        return False
    entry = spec.parameters.get("device", {"value": spec.family.params["device"].default})
    return "cuda" in entry.get("values", [entry.get("value")])


def check_cuda_requests(spec, cluster: ClusterShape | None = None, gpus_per_trial: float = 0.0) -> None:
    """`device: cuda` needs a GPU for every trial that asks for it: refuse the sweep, in one line,
    when the cluster has no GPU on any node (nor a node type that could start with one), or when
    trials are given no GPU share. `cluster` None: the local machine before Ray starts, judged by torch."""
    if not asks_for_cuda(spec):
        return
    if cluster is None:
        import torch

        if not torch.cuda.is_available():
            raise SweepError("device: cuda, but this machine has no CUDA GPU torch can use; set device auto or "
                             "cpu, or send the sweep to a cluster with GPUs (--address)")
        return
    gpus = [n.get("GPU", 0) for n in cluster.nodes] + [(t or {}).get("GPU", 0) for t in cluster.node_types]
    if not any(gpus) and not any(t is None for t in cluster.node_types):
        raise SweepError("device: cuda, but no node of this cluster has a GPU; set device auto or cpu, or use a "
                         "cluster with GPU nodes")
    if gpus_per_trial <= 0:
        raise SweepError("device: cuda, but trials get no GPU (--gpus-per-trial 0); give them a share, e.g. "
                         "--gpus-per-trial 0.25")
