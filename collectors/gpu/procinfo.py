"""What /proc tells about a process that holds a GPU: who, what, and in which container or job.

Everything here is best effort: a process can exit between NVML listing it and us reading
/proc, and another user's `environ` is unreadable without privileges. Neither is an error;
the record just has fewer fields (user "unknown" when the process is gone).
"""

from __future__ import annotations

import pwd
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

UNKNOWN_USER = "unknown"

# Variables read for the typed fields below, whether or not the caller asked for them.
SLURM_VARS = ("SLURM_JOB_NAME", "SLURM_JOB_ID")
K8S_VARS = ("POD_NAME", "POD_NAMESPACE", "HOSTNAME", "KUBERNETES_SERVICE_HOST")

# A container id is 64 hex digits as the last part of a cgroup path, bare (cgroupfs driver:
# `/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`) or in a systemd scope
# (`docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`).
_CONTAINER_RE = re.compile(r"(?:^|[/:-])([0-9a-f]{64})(?:\.scope)?$")
# Pod uid: `pod<uid>` (cgroupfs) or `-pod<uid with _>.slice` (systemd driver).
_POD_UID_RE = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})"
)
# Where Kubernetes mounts the pod's namespace, seen through the process's own root.
_K8S_NAMESPACE_FILE = "root/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class ProcessInfo:
    """One process as /proc describes it. `env` holds only the variables asked for."""

    pid: int
    user: str
    command: str
    env: dict[str, str] = field(default_factory=dict, hash=False)
    container: str | None = None
    pod: str | None = None
    namespace: str | None = None
    slurm_job: str | None = None
    pod_uid: str | None = None


def read_process_info(
    pid: int, env_vars: Iterable[str] = (), *, root: str | Path = "/proc"
) -> ProcessInfo:
    """Read `pid` from the /proc tree at `root`; a vanished or unreadable pid is never an error."""
    base = Path(root) / str(pid)
    uid = _uid(base)
    if uid is None:
        return ProcessInfo(pid=pid, user=UNKNOWN_USER, command="")
    wanted = set(env_vars)
    environ = read_environ(base, wanted | set(SLURM_VARS) | set(K8S_VARS))
    container, pod_uid = container_and_pod_uid(_read_text(base / "cgroup") or "")
    in_pod = pod_uid is not None or "KUBERNETES_SERVICE_HOST" in environ
    return ProcessInfo(
        pid=pid,
        user=user_name(uid),
        command=_command(base),
        env={k: v for k, v in environ.items() if k in wanted},
        container=container,
        pod=environ.get("POD_NAME") or (environ.get("HOSTNAME") if in_pod else None),
        namespace=environ.get("POD_NAMESPACE") or (_k8s_namespace(base) if in_pod else None),
        slurm_job=environ.get("SLURM_JOB_NAME") or environ.get("SLURM_JOB_ID"),
        pod_uid=pod_uid,
    )


def process_start_time(pid: int, *, root: str | Path = "/proc") -> int | None:
    """Field 22 of `/proc/<pid>/stat`, the process's start in clock ticks after boot; None when
    the process is gone. With the pid it names one process across time, since pids are reused."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # `comm` (field 2, in parentheses) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])  # fields[0] is field 3 (state), so field 22 is fields[19]
    except (IndexError, ValueError):
        return None


class ProcessInfoCache:
    """`read_process_info` with memory, for a collector that sees the same processes every tick.

    A pid whose start time is unchanged is the same process: its cached record (and whatever
    `derive` computed from it, such as its workload) is returned after one small read of
    `/proc/<pid>/stat`, instead of five files and a passwd lookup. A new start time (the pid
    was reused) or a gone process reads afresh. `keep_only` forgets pids no longer on a GPU.
    """

    def __init__(
        self,
        env_vars: Iterable[str] = (),
        *,
        root: str | Path = "/proc",
        derive: Callable[[ProcessInfo], object] | None = None,
    ) -> None:
        self.env_vars = tuple(env_vars)
        self.root = root
        self.derive = derive
        self._entries: dict[int, tuple[int, ProcessInfo, object]] = {}

    def get(self, pid: int) -> tuple[ProcessInfo, object]:
        """The record of `pid` and its derived value (None without `derive`)."""
        start = process_start_time(pid, root=self.root)
        cached = self._entries.get(pid)
        if cached is not None and start is not None and cached[0] == start:
            return cached[1], cached[2]
        info = read_process_info(pid, self.env_vars, root=self.root)
        derived = self.derive(info) if self.derive is not None else None
        if start is None:
            self._entries.pop(pid, None)  # gone: nothing to keep
        else:
            self._entries[pid] = (start, info, derived)
        return info, derived

    def keep_only(self, pids: Iterable[int]) -> None:
        """Forget every pid not in `pids`."""
        alive = set(pids)
        for pid in [p for p in self._entries if p not in alive]:
            del self._entries[pid]

    def __len__(self) -> int:
        return len(self._entries)


def user_name(uid: int) -> str:
    """The login name of `uid`, or the uid as text when the passwd database has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def read_environ(base: Path, names: Iterable[str]) -> dict[str, str]:
    """The variables `names` from `base/environ`; {} when unreadable (another user's process)."""
    wanted = set(names)
    try:
        raw = (base / "environ").read_bytes()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        name = key.decode("utf-8", "replace")
        if sep and name in wanted:
            out[name] = value.decode("utf-8", "replace")
    return out


def container_and_pod_uid(cgroup_text: str) -> tuple[str | None, str | None]:
    """The container id and Kubernetes pod uid named in a /proc/<pid>/cgroup text (v1 or v2)."""
    container = pod_uid = None
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1].strip()
        match = _CONTAINER_RE.search(path)
        if match and container is None:
            container = match.group(1)
        pod = _POD_UID_RE.search(path)
        if pod and pod_uid is None:
            pod_uid = pod.group(1).replace("_", "-")
    return container, pod_uid


def _uid(base: Path) -> int | None:
    """The real uid from `status`, None when the process is gone."""
    for line in (_read_text(base / "status") or "").splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            if len(fields) > 1 and fields[1].isdigit():
                return int(fields[1])
    return None


def _command(base: Path) -> str:
    """The command line with NULs as spaces; the `comm` name in brackets for kernel threads."""
    try:
        raw = (base / "cmdline").read_bytes()
    except OSError:
        raw = b""
    command = " ".join(p.decode("utf-8", "replace") for p in raw.split(b"\0") if p)
    if command:
        return command
    comm = (_read_text(base / "comm") or "").strip()
    return f"[{comm}]" if comm else ""


def _k8s_namespace(base: Path) -> str | None:
    """The pod's namespace from its service-account mount, when we may read it."""
    text = _read_text(base / _K8S_NAMESPACE_FILE)
    return (text.strip() or None) if text else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
