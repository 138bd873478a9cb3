"""A real S3 server on 127.0.0.1 for tests: moto's standalone server, a separate process speaking the S3
protocol over HTTP (MinIO is not installable from the registries this project can reach). It checks
credentials: a user and its access key are made through the server's IAM API, and any other key is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import free_port

SETUP_CALLS = 4  # moto answers this many requests without credentials: create the user, its policy and key


class S3Server:
    def __init__(self, root: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "s3-server.log", "w")
        moto_server = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.process = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(self.port)],
                                        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)},
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while True:
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=1)
                break
            except requests.RequestException:
                assert time.time() < deadline and self.process.poll() is None, (root / "s3-server.log").read_text()
                time.sleep(0.3)
        self.access_key, self.secret_key = self._make_user()

    def _make_user(self) -> tuple[str, str]:
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="sweeper")
        policy = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        iam.attach_user_policy(UserName="sweeper", PolicyArn=policy["Policy"]["Arn"])
        key = iam.create_access_key(UserName="sweeper")["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    @property
    def env(self) -> dict[str, str]:
        """The settings a user gives: endpoint and credentials in AWS's environment variables."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        self.log.close()
