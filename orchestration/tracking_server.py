"""`python -m orchestration.tracking_server`: the cluster head's MLflow tracking server, with MLflow's
basic-auth app, as cluster.yaml starts it.

Why a module and not a line of shell in cluster.yaml: the tests start the server through this same code,
so the recipe users deploy is the one that is tested. What it does, once per head:
- an admin password is generated (secrets) into HOME/admin_password, readable only by this user; it is
  handed to the server in its environment and never printed or written anywhere else (likewise the key
  that signs the UI's CSRF tokens, HOME/flask_secret_key);
- MLflow's credentials file (~/.mlflow/credentials, mode 600) gets the admin's name and password, so sweeps
  started on the head authenticate with no settings; trials on other nodes receive them from the sweep
  (`cluster.trial_environment`), nobody copies files to workers;
- the server runs `mlflow server --app-name basic-auth` with the users' database next to the store.
New users (and their permissions) are made with MLflow's auth API (README "Cluster")."""

from __future__ import annotations

import argparse
import configparser
import os
import secrets
import sys
from pathlib import Path

ADMIN = "admin"


def _private_file(path: Path, text: str) -> None:
    """Create `path` readable and writable by this user only, before anything is written to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def secret(home: Path, name: str) -> str:
    """A secret of the head (the admin password, the key that signs the UI's CSRF tokens): generated on
    first use into a file only this user can read, then read back."""
    path = home / name
    if not path.exists():
        _private_file(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def write_auth_config(home: Path, database_uri: str, default_permission: str) -> Path:
    """MLflow's basic-auth settings (no secret in it: the password travels in the environment)."""
    config = configparser.ConfigParser()
    config["mlflow"] = {"default_permission": default_permission, "database_uri": database_uri,
                        "admin_username": ADMIN,
                        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth"}
    path = home / "basic_auth.ini"
    with open(path, "w") as handle:
        config.write(handle)
    return path


def write_credentials(path: Path, username: str, password: str) -> None:
    """MLflow's credentials file, which its clients read when MLFLOW_TRACKING_USERNAME is not set."""
    config = configparser.ConfigParser()
    if path.exists():
        config.read(path)
    config["mlflow"] = {"mlflow_tracking_username": username, "mlflow_tracking_password": password}
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {value}" for key, value in config["mlflow"].items()]
    _private_file(path, "[mlflow]\n" + "\n".join(lines) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestration.tracking_server", description=__doc__.split("\n")[0])
    parser.add_argument("--home", default="~/mlflow", help="where the password, auth settings and users live")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backend-store-uri", help="runs and metrics (default: sqlite:///HOME/mlflow.db)")
    parser.add_argument("--artifacts-destination", help="artifacts, served by the server (default: HOME/artifacts; "
                                                        "s3://BUCKET/PREFIX on a cluster)")
    parser.add_argument("--auth-database-uri", help="users and permissions (default: sqlite:///HOME/basic_auth.db)")
    parser.add_argument("--default-permission", default="READ", choices=("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"),
                        help="what a user may do with another user's experiments (default: READ)")
    parser.add_argument("--credentials-file", default="~/.mlflow/credentials",
                        help="MLflow's credentials file for this user, given the admin's login ('' for none)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    home = Path(args.home).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    password = secret(home, "admin_password")
    config = write_auth_config(home, args.auth_database_uri or f"sqlite:///{home / 'basic_auth.db'}",
                               args.default_permission)
    if args.credentials_file:
        write_credentials(Path(args.credentials_file).expanduser(), ADMIN, password)
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_PASSWORD": password,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secret(home, "flask_secret_key")}
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", args.host,
               "--port", str(args.port), "--workers", str(args.workers),
               "--backend-store-uri", args.backend_store_uri or f"sqlite:///{home / 'mlflow.db'}",
               "--artifacts-destination", args.artifacts_destination or str(home / "artifacts")]
    print(f"[tracking] MLflow with basic-auth on {args.host}:{args.port}; admin {ADMIN!r}, password in "
          f"{home / 'admin_password'} (mode 600)", flush=True)
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()
