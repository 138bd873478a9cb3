"""Where Tune keeps checkpoints and experiment state: a local folder, or an object store (s3://, gs://, ...)
reached through pyarrow's file systems, the way Tune itself reaches it.

An object store is given the way its users give it: `s3://bucket/prefix`, with the endpoint and credentials
from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...) or in the URI's query
(`?endpoint_override=...`). It is checked before any trial runs, so a missing bucket, refused credentials or
an unreachable endpoint is one line, not a trial failure minutes later."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse, urlunparse

from orchestration.errors import SweepError, first_line

# Settings the trials on other nodes need to reach the same store as this process: forwarded with the job
ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE")


@dataclass(frozen=True)
class Storage:
    uri: str  # what Tune is given: an absolute local path, or the URI as written (query included)
    root: str  # the same place as a path inside `filesystem`

    @classmethod
    def parse(cls, text: str) -> Storage:
        if "://" not in text:
            path = os.path.abspath(os.path.expanduser(text))
            return cls(uri=path, root=path)
        import pyarrow.fs

        try:
            filesystem, root = pyarrow.fs.FileSystem.from_uri(text)
        except Exception as err:  # pyarrow's ArrowInvalid, OSError: a scheme or query it does not know
            raise SweepError(f"--storage-path {text!r}: {first_line(err)}") from None
        if isinstance(filesystem, pyarrow.fs.LocalFileSystem):  # file:///path is a folder
            return cls.parse(root)
        return cls(uri=text, root=root.rstrip("/"))

    @property
    def remote(self) -> bool:
        return "://" in self.uri

    @property
    def filesystem(self):
        import pyarrow.fs

        if not self.remote:
            return pyarrow.fs.LocalFileSystem()
        return pyarrow.fs.FileSystem.from_uri(self.uri)[0]

    def experiment(self, name: str) -> str:
        """The experiment folder as Tune takes it (Tuner.restore, ExperimentAnalysis)."""
        if not self.remote:
            return os.path.join(self.uri, name)
        parsed = urlparse(self.uri)
        return urlunparse(parsed._replace(path=parsed.path.rstrip("/") + "/" + name))

    def display(self, name: str = "") -> str:
        """For output: the URI without its query, which may name an endpoint or more."""
        return self.experiment(name).split("?")[0].rstrip("/")

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def has_experiment(self, name: str) -> bool:
        import pyarrow.fs

        return self.filesystem.get_file_info(self._path(name)).type == pyarrow.fs.FileType.Directory

    def experiments(self, sweep: str) -> list[str]:
        """Names of this sweep's experiments under the storage path, oldest first (names carry the time)."""
        import pyarrow.fs

        selector = pyarrow.fs.FileSelector(self.root, allow_not_found=True)
        return sorted(info.base_name for info in self.filesystem.get_file_info(selector)
                      if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(f"{sweep}-"))

    def read_text(self, name: str, file: str) -> str | None:
        import pyarrow.fs

        fs, path = self.filesystem, self._path(name, file)
        if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
            return None
        with fs.open_input_stream(path) as stream:
            return stream.read().decode()

    def write_text(self, name: str, file: str, text: str) -> None:
        fs = self.filesystem
        fs.create_dir(self._path(name), recursive=True)
        with fs.open_output_stream(self._path(name, file)) as stream:
            stream.write(text.encode())

    def delete(self, name: str, file: str) -> None:
        self.filesystem.delete_file(self._path(name, file))

    def check(self, timeout: float = 5.0) -> None:
        """An object store must answer, know the bucket and let these credentials write, before Ray starts."""
        if not self.remote:
            return
        endpoint = _endpoint(self.uri)
        if endpoint and not _answers(endpoint, timeout):
            raise SweepError(f"storage endpoint {endpoint} is unreachable (for --storage-path {self.display()})")
        import pyarrow.fs

        bucket = self.root.split("/")[0]
        try:
            fs = self.filesystem
            if fs.get_file_info(bucket).type == pyarrow.fs.FileType.NotFound:
                raise SweepError(f"--storage-path {self.display()}: bucket {bucket!r} does not exist"
                                 + (f" at {endpoint}" if endpoint else ""))
            probe = self._path(f".sweep-write-check-{uuid.uuid4().hex[:8]}")
            with fs.open_output_stream(probe) as stream:
                stream.write(b"ok")
            fs.delete_file(probe)
        except OSError as err:
            raise SweepError(f"--storage-path {self.display()}: {_explain(err)}") from None


def forwarded_environment() -> dict[str, str]:
    """This process's object-store settings, for trials on every node."""
    return {key: os.environ[key] for key in ENVIRONMENT if key in os.environ}


def _endpoint(uri: str) -> str | None:
    query = parse_qs(urlparse(uri).query)
    if "endpoint_override" in query:
        endpoint = query["endpoint_override"][0]
        scheme = query.get("scheme", ["https"])[0]
        return endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
    if uri.startswith("s3://"):
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return None


def _answers(endpoint: str, timeout: float) -> bool:
    from orchestration.cluster import port_open

    parsed = urlparse(endpoint)
    return port_open(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80), timeout)


def _explain(err: OSError) -> str:
    text = first_line(err)
    if any(code in text for code in ("ACCESS_DENIED", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403")):
        return f"the store refused these credentials ({text}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    return text
