"""procinfo against fake /proc trees built in tmp_path, and once against the real /proc/self."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from collectors.gpu.procinfo import (
    ProcessInfo,
    ProcessInfoCache,
    container_and_pod_uid,
    process_start_time,
    read_process_info,
)

try:  # run as a package (tests/collectors/__init__.py) or as rootdir-less test modules
    from tests.collectors.gpu.fake_nvml import write_proc_entry
except ImportError:  # pragma: no cover - depends on how pytest was started
    from fake_nvml import write_proc_entry  # type: ignore[no-redef]

DOCKER_ID = "3f4e" * 16
POD_UID = "8c2c5f3e-1b7a-4d0e-9f6a-2b1c3d4e5f60"


def test_user_command_and_only_the_asked_environment(tmp_path):
    write_proc_entry(
        tmp_path,
        77,
        uid=0,
        cmdline=["python", "-m", "torch.distributed.run", "train.py"],
        environ={"GPULEDGER_WORKLOAD": "llm", "SECRET_TOKEN": "s3cr3t", "TEAM": "a=b"},
    )
    info = read_process_info(77, ["GPULEDGER_WORKLOAD", "TEAM", "ABSENT"], root=tmp_path)
    assert info == ProcessInfo(
        pid=77,
        user="root",
        command="python -m torch.distributed.run train.py",
        env={"GPULEDGER_WORKLOAD": "llm", "TEAM": "a=b"},
    )


def test_uid_without_passwd_entry_is_the_uid_as_text(tmp_path):
    write_proc_entry(tmp_path, 78, uid=4242424)
    assert read_process_info(78, root=tmp_path).user == "4242424"


def test_vanished_pid_is_a_record_not_an_error(tmp_path):
    info = read_process_info(31337, ["GPULEDGER_WORKLOAD"], root=tmp_path)
    assert info == ProcessInfo(pid=31337, user="unknown", command="", env={})
    assert (info.container, info.pod, info.namespace, info.slurm_job) == (None,) * 4


def test_unreadable_environ_gives_empty_env(tmp_path):
    base = write_proc_entry(tmp_path, 79, uid=0, environ={"GPULEDGER_WORKLOAD": "x"})
    (base / "environ").unlink()
    (base / "environ").mkdir()  # reading it fails with an OSError even for root
    info = read_process_info(79, ["GPULEDGER_WORKLOAD"], root=tmp_path)
    assert info.env == {}
    assert info.user == "root"


def test_kernel_thread_without_cmdline_shows_its_comm(tmp_path):
    write_proc_entry(tmp_path, 2, uid=0, cmdline=[], comm="kthreadd")
    assert read_process_info(2, root=tmp_path).command == "[kthreadd]"


@pytest.mark.parametrize(
    ("cgroup", "container", "pod_uid"),
    [
        # cgroup v1, docker with the cgroupfs driver
        (f"12:memory:/docker/{DOCKER_ID}\n11:cpu:/docker/{DOCKER_ID}\n", DOCKER_ID, None),
        # cgroup v2, docker with the systemd driver
        (f"0::/system.slice/docker-{DOCKER_ID}.scope\n", DOCKER_ID, None),
        # cgroup v2, kubelet systemd driver with containerd: the uid has underscores
        (
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"{POD_UID.replace('-', '_')}.slice/cri-containerd-{DOCKER_ID}.scope\n",
            DOCKER_ID,
            POD_UID,
        ),
        # cgroup v1, kubelet cgroupfs driver (containerd or docker)
        (f"4:devices:/kubepods/besteffort/pod{POD_UID}/{DOCKER_ID}\n", DOCKER_ID, POD_UID),
        # cri-o
        (
            f"0::/kubepods.slice/kubepods-pod{POD_UID.replace('-', '_')}.slice/"
            f"crio-{DOCKER_ID}.scope\n",
            DOCKER_ID,
            POD_UID,
        ),
        # a plain login session
        ("0::/user.slice/user-1000.slice/session-3.scope\n", None, None),
        ("", None, None),
    ],
)
def test_container_id_and_pod_uid_from_cgroup(cgroup, container, pod_uid):
    assert container_and_pod_uid(cgroup) == (container, pod_uid)


def test_container_and_pod_read_from_the_tree(tmp_path):
    cgroup = (
        f"0::/kubepods.slice/kubepods-pod{POD_UID.replace('-', '_')}.slice/crio-{DOCKER_ID}.scope\n"
    )
    base = write_proc_entry(
        tmp_path, 80, uid=0, cgroup=cgroup, environ={"HOSTNAME": "eval-7d9f-x2"}
    )
    ns_file = base / "root/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    ns_file.parent.mkdir(parents=True)
    ns_file.write_text("team-vision")
    info = read_process_info(80, root=tmp_path)
    assert (info.container, info.pod_uid, info.pod, info.namespace) == (
        DOCKER_ID,
        POD_UID,
        "eval-7d9f-x2",  # HOSTNAME is the pod name inside a pod
        "team-vision",
    )


def test_pod_env_wins_and_hostname_outside_a_pod_is_no_pod(tmp_path):
    write_proc_entry(
        tmp_path,
        81,
        environ={"POD_NAME": "trainer-0", "POD_NAMESPACE": "ml", "HOSTNAME": "node-1"},
        cgroup=f"0::/kubepods/pod{POD_UID}/{DOCKER_ID}\n",
    )
    write_proc_entry(tmp_path, 82, environ={"HOSTNAME": "workstation"})
    assert (
        read_process_info(81, root=tmp_path).pod,
        read_process_info(81, root=tmp_path).namespace,
    ) == (
        "trainer-0",
        "ml",
    )
    outside = read_process_info(82, root=tmp_path)
    assert (outside.pod, outside.namespace, outside.container) == (None, None, None)


@pytest.mark.parametrize(
    ("environ", "job"),
    [
        ({"SLURM_JOB_ID": "123456", "SLURM_JOB_NAME": "bert-pretrain"}, "bert-pretrain"),
        ({"SLURM_JOB_ID": "123456"}, "123456"),
        ({}, None),
    ],
)
def test_slurm_job_name_else_id(tmp_path, environ, job):
    write_proc_entry(tmp_path, 83, environ=environ)
    info = read_process_info(83, root=tmp_path)
    assert info.slurm_job == job
    assert info.env == {}  # typed fields are read without putting the variables in env


def test_process_info_is_frozen_and_hashable(tmp_path):
    write_proc_entry(tmp_path, 84, environ={"A": "1"})
    info = read_process_info(84, ["A"], root=tmp_path)
    with pytest.raises(AttributeError):
        info.user = "x"  # type: ignore[misc]
    assert hash(info) == hash(read_process_info(84, ["A"], root=tmp_path))


def test_real_proc_self():
    if not Path("/proc/self/status").exists():  # pragma: no cover - not Linux
        pytest.skip("no /proc here")
    info = read_process_info(os.getpid(), ["PATH"])
    try:
        expected_user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # pragma: no cover - container without a passwd entry
        expected_user = str(os.getuid())
    assert info.pid == os.getpid()
    assert info.user == expected_user
    assert "python" in info.command or "pytest" in info.command
    assert set(info.env) <= {"PATH"}


# --------------------------------------------------------------------------- start time, cache


def test_start_time_is_field_22_even_with_odd_command_names(tmp_path):
    write_proc_entry(tmp_path, 90, comm="a) (b c", start_time=123456)
    assert process_start_time(90, root=tmp_path) == 123456
    assert process_start_time(91, root=tmp_path) is None  # gone
    (tmp_path / "92").mkdir()
    (tmp_path / "92" / "stat").write_text("92 (x) S 1\n")  # truncated
    assert process_start_time(92, root=tmp_path) is None


def test_real_proc_self_start_time_is_stable():
    if not Path("/proc/self/stat").exists():  # pragma: no cover - not Linux
        pytest.skip("no /proc here")
    first = process_start_time(os.getpid())
    assert isinstance(first, int) and first > 0
    assert process_start_time(os.getpid()) == first


def test_cache_reads_a_process_once_and_again_when_its_pid_is_reused(tmp_path):
    write_proc_entry(tmp_path, 93, environ={"W": "first"}, start_time=100)
    derived: list[str] = []
    cache = ProcessInfoCache(["W"], root=tmp_path, derive=lambda i: derived.append(i.env["W"]))
    assert cache.get(93)[0].env == {"W": "first"}
    # Same start time: the same process, whatever its files say now; not read, not derived.
    write_proc_entry(tmp_path, 93, environ={"W": "changed"}, start_time=100)
    assert cache.get(93)[0].env == {"W": "first"}
    assert derived == ["first"]
    # A new start time: the pid was reused by another process.
    write_proc_entry(tmp_path, 93, environ={"W": "second"}, start_time=200)
    assert cache.get(93)[0].env == {"W": "second"}
    assert derived == ["first", "second"]
    assert len(cache) == 1
    cache.keep_only([])
    assert len(cache) == 0


def test_cache_keeps_nothing_of_a_gone_process(tmp_path):
    cache = ProcessInfoCache(root=tmp_path)
    info, derived = cache.get(94)
    assert (info.user, info.command, derived) == ("unknown", "", None)
    assert len(cache) == 0
    write_proc_entry(tmp_path, 94, cmdline=["late"])
    assert cache.get(94)[0].command == "late"  # it appeared: read, not a cached "gone"
