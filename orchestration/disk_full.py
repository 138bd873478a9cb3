"""A full disk, told so that the user can act on it: which store hit it, where that is, how much is free.

A sweep writes to three stores: MLflow's tracking store (a SQLite file by default), Tune's folder
(checkpoints, experiment state) and MLflow's artifact root; trials also stage checkpoints in Ray's temp
folder. When one fills, no later write to it can succeed, and retrying is not worth it: on one machine every
trial writes to the same disk, and on a cluster the three stores are shared by every node (a multi-node Tune
run needs a shared storage path; the tracking server and its artifacts live on the head), so a retry on
another node writes to the same full disk. Tune cannot be told to retry elsewhere either: a requeued trial
may land on the node it left. So the sweep stops at the first full-disk error, resumably, and says where.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from orchestration.errors import SweepStopped, last_error_line

SQLITE_FULL = "database or disk is full"


@dataclass(frozen=True)
class Store:
    name: str  # as the user knows it: "the SQLite file", "the Tune folder", ...
    location: str  # its path or URI
    path: Path | None  # on this machine's file system; None for a server or an object store
    signs: tuple[str, ...] = ()  # words in a traceback that point to this store when no path is quoted
    quoted: bool = True  # a traceback quoting a path under `path` means this store (not for /tmp: too broad)


def local_path(uri: str) -> Path | None:
    """The file-system path of a plain path or file:// URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path if parsed.scheme else uri)).expanduser().absolute()
    return None


def sweep_stores(tracking_uri: str, storage, tune_name: str, artifact_location: str | None) -> list[Store]:
    """The places a sweep writes, most specific sign first."""
    from orchestration.tracking import sqlite_path

    if urlparse(tracking_uri).scheme == "sqlite":
        database = Path(sqlite_path(tracking_uri) or "mlflow.db").absolute()
        tracking = Store("the SQLite file", str(database), database, (SQLITE_FULL,))
    else:
        tracking = Store("the MLflow tracking store", tracking_uri, None, (SQLITE_FULL, "psycopg2", "pymysql"))
    tune = Store("the Tune folder", storage.display(tune_name), None if storage.remote else Path(storage.experiment(
        tune_name)), ("persist_current_checkpoint", "pyarrow", "experiment_state"))
    stores = [tracking, tune]
    if artifact_location:
        local = local_path(artifact_location)
        stores.append(Store("the artifact root", str(local or artifact_location), local,
                            ("artifact_repo", "log_artifact", "log_model", "log_text", "log_image")))
    temp = Path(tempfile.gettempdir())  # where trials stage checkpoints and artifacts (Ray's session folder too)
    stores.append(Store("the temp folder", str(temp), temp, ("write_artifacts", "save_checkpoint"), quoted=False))
    return stores


def file_system(path: Path) -> tuple[str, str]:
    """(mount point, type) of the file system holding `path`, from /proc/self/mounts; the nearest
    existing folder stands in for a path not created yet. ("", "") where the mounts cannot be read."""
    path = existing_ancestor(path).resolve()
    best = ("", "")
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        if (path == Path(mount) or Path(mount) in path.parents) and len(mount) >= len(best[0]):
            best = (mount, fields[2])
    return best


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def space(path: Path) -> str:
    """'tmpfs /tmp/x, 0 B of 12.0 MB free' for the file system holding `path`."""
    mount, kind = file_system(path)
    try:
        usage = shutil.disk_usage(existing_ancestor(path))
    except OSError:
        return f"{kind} {mount}".strip() or str(path)
    free = f"{size(usage.free)} of {size(usage.total)} free"
    return f"{kind} {mount}, {free}" if mount else free


def store_hit(text: str, stores: list[Store]) -> Store | None:
    """The store a full-disk traceback names: by a path it quotes, then by the code that wrote, then the
    local store with the least free space."""
    for store in sorted((s for s in stores if s.path and s.quoted), key=lambda s: -len(str(s.path))):
        if str(store.path) in text:
            return store
    for store in stores:
        if any(sign in text for sign in store.signs):
            return store
    local = [s for s in stores if s.path]
    return min(local, key=lambda s: shutil.disk_usage(existing_ancestor(s.path)).free) if local else None


def disk_full_message(text: str, stores: list[Store], what: str, continue_command: str) -> str:
    """One line: the store that filled, its path, file system and free space, the other stores on that file
    system, what failed, and the command that continues once there is room."""
    store = store_hit(text, stores)
    cause = f"{what}: {last_error_line(text)}"
    keep = "what was logged and checkpointed is kept"
    if store is None:
        return f"disk full ({cause}); {keep}: free space, then continue with: {continue_command}"
    where = f"{store.name} {store.location}"
    if store.path is not None:
        where += f" is on {space(store.path)}"
        mount = file_system(store.path)[0]
        shared = [s.name for s in stores if s is not store and s.path and file_system(s.path)[0] == mount]
        if shared and mount:
            where += f" (with {' and '.join(shared)})"
    return f"disk full: {where} ({cause}); {keep}: free space there, then continue with: {continue_command}"


def full_disk_stop(text: str, what: str, command: str, uri: str, storage, name: str, experiment: str) -> SweepStopped:
    """The one line for a full disk (which store, where, how much is free, how to continue), also kept
    beside Tune's state for the parent run, which a resumed sweep tags with it."""
    from orchestration.state_notes import StoppedNote
    from orchestration.tracking import artifact_location

    stores = sweep_stores(uri, storage, name, artifact_location(uri, experiment))
    line = disk_full_message(text, stores, what, command)
    StoppedNote(storage, name).say(line)
    return SweepStopped(line)


def trials_full_disk_stop(failure: tuple[str, str], tracking, command: str, uri: str, storage,
                          name: str) -> SweepStopped:
    """A trial hit a full disk and the sweep stopped: say where; the parent run hears of it when its store
    still takes writes (a full tracking store is not asked again)."""
    text, what = failure
    stop = full_disk_stop(text, what, command, uri, storage, name, tracking.experiment_name)
    if SQLITE_FULL not in text:
        with contextlib.suppress(Exception):
            tracking.set_tag("sweep.stopped", str(stop))
            tracking.close("FAILED")
    return stop
