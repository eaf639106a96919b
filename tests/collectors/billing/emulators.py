"""The storage emulators the Azure and Google Cloud pull tests run against, on 127.0.0.1.

- Azurite (the npm package `azurite`, Blob service only): `make emulators` and `.ci/run`
  install it into `.tools/npm` (or set AZURITE_BLOB to its `azurite-blob` script); the tests
  that need it are skipped, saying how to install it, where Node.js or the package is missing.
- gcp-storage-emulator (PyPI, requirements-dev.txt), in memory.

Each starts on a free port for one test module and is stopped after it. Import the fixtures into
a test module: `from tests.collectors.billing.emulators import azurite, gcs_emulator`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LOCAL_AZURITE = ROOT / ".tools/npm/node_modules/.bin/azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {out[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f}s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=2)  # Azurite waits for idle keep-alive connections: not worth it
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def azurite_command() -> str | None:
    """The `azurite-blob` script: $AZURITE_BLOB, the project's `.tools/npm`, or on PATH."""
    if shutil.which("node") is None:
        return None
    for candidate in (os.environ.get("AZURITE_BLOB"), str(LOCAL_AZURITE)):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("azurite-blob")


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{DEV_ACCOUNT};"
        )


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    command = azurite_command()
    if command is None:
        pytest.skip(
            "Azurite is not installed (needs Node.js and the npm package azurite): run "
            "`make emulators`, or set AZURITE_BLOB to an azurite-blob script"
        )
    port = free_port()
    folder = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [command, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder)]
        + ["--silent", "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, proc, "azurite-blob")
        yield Azurite(port)
    finally:
        _stop(proc)


@dataclass(frozen=True)
class GcsEmulator:
    port: int

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def gcs_emulator() -> Iterator[GcsEmulator]:
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is not installed")
    port = free_port()
    code = (
        "import sys; from gcp_storage_emulator.server import create_server; "
        f"s = create_server('127.0.0.1', {port}, in_memory=True); s.start(); "
        "sys.stdin.read(); s.stop()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, proc, "gcp-storage-emulator")
        yield GcsEmulator(port)
    finally:
        if proc.stdin:
            proc.stdin.close()
        _stop(proc)
