"""cluster.yaml passes Ray's own cluster-launcher schema, without cloud credentials."""

import re
from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parent.parent / "cluster.yaml"


def load():
    return prepare_config(yaml.safe_load(CLUSTER_YAML.read_text()))


def test_cluster_yaml_is_valid_for_the_ray_cluster_launcher():
    validate_config(load())


def test_cluster_has_a_cpu_head_and_autoscaling_gpu_workers():
    config = load()
    nodes = config["available_node_types"]
    head = nodes[config["head_node_type"]]
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))
    gpu_types = {name: node for name, node in nodes.items() if name != config["head_node_type"]}
    assert len(gpu_types) >= 2 and all(n["node_config"]["InstanceType"].startswith("g") for n in gpu_types.values())
    assert all(n["min_workers"] == 0 and n["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
               for n in gpu_types.values())


def test_nothing_is_open_to_the_world():
    config = load()
    rules = config["provider"]["security_group"]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)], "only SSH"
    assert all(ip["CidrIp"] != "0.0.0.0/0" for r in rules for ip in r["IpRanges"])
    start = " ".join(config["head_start_ray_commands"])
    assert "orchestration.tracking_server" in start and "--dashboard-host=127.0.0.1" in start
    assert "pip install" in " ".join(config["setup_commands"])


def test_the_heads_mlflow_server_is_sized_for_many_trials():
    """The server command carries the connection-pool settings bench/tracking_load.py measured, and the head
    can run PostgreSQL for it."""
    start = " ".join(load()["head_start_ray_commands"])
    server = start[start.index("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"):start.index("> ~/mlflow/server.log")]
    settings = dict(word.split("=", 1) for word in server.split() if "=" in word and word.startswith("MLFLOW_"))
    assert settings == {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "40", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "40"}
    assert "orchestration.tracking_server" in server and "--workers 4" in server
    setup = " ".join(load()["head_setup_commands"])
    assert "postgresql" in setup
    # PostgreSQL must accept every connection the server's pools may open (its default is 100)
    max_connections = int(re.search(r"max_connections\s*=\s*(\d+)", setup).group(1))
    assert max_connections >= 4 * (40 + 40)


def test_the_heads_tracking_server_is_the_tested_recipe_authenticated_on_postgresql_with_s3_artifacts():
    """The head starts the module the auth tests start (tests/test_tracking_auth.py), with these settings."""
    import shlex

    from orchestration.tracking_server import parse_args

    start = " ".join(load()["head_start_ray_commands"])
    server = start[start.index("-m orchestration.tracking_server"):start.index("> ~/mlflow/server.log")]
    words = shlex.split(server)[2:]
    args = parse_args(words)
    assert args.backend_store_uri.startswith("postgresql+psycopg2://")
    assert args.auth_database_uri.startswith("postgresql+psycopg2://")
    assert args.artifacts_destination.startswith("s3://") and args.default_permission == "READ"
    assert args.credentials_file == "~/.mlflow/credentials" and args.host == "0.0.0.0"
    setup = " ".join(load()["head_setup_commands"])
    assert "createdb mlflow_auth" in setup and "boto3" in setup
    workers = [n for name, n in load()["available_node_types"].items() if name != "head"]
    assert all(n["node_config"]["IamInstanceProfile"] == {"Name": "ray-autoscaler-v1"} for n in workers)
