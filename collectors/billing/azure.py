"""The Azure billing pull: Cost Management exports in Blob Storage, into the spool.

Cost Management writes each run of an export under
`<container>/<directory>/<export name>/<YYYYMMDD-YYYYMMDD>/`:
- current exports: `…/<run id>/part_N_NNNN.csv[.gz]` (or Parquet) with a `manifest.json` in the
  run folder that lists the run's `blobs` and says the export's type (`exportConfig.type`:
  ActualCost, AmortizedCost, FocusCost);
- older exports: `…/<export name>_<guid>.csv`, one file per run, straight in the date-range
  folder (each run adds a file: only the newest is current).

The pipeline is the interface's (collectors/billing/provider.py `pull_exports`): a billing period
whose current blobs all kept their ETag is not downloaded again; a new or restated one is taken
whole (downloaded exactly at the listed ETag), read as FOCUS (collectors/billing/focus.py) or as
actual/amortized cost details (collectors/billing/azure_cost.py, the basis from the manifest,
else the export's name) and written as one spool batch whose rows replace the period's earlier
ones. Credentials: a connection string from the environment variable [azure]
connection_string_env names, else azure-identity's DefaultAzureCredential chain (environment,
workload identity, managed identity, Azure CLI); never a key in the configuration.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from collectors.billing import azure_cost, focus
from collectors.billing import formats as billing_formats
from collectors.billing.provider import (
    ObjectStore,
    PullLine,
    PullReport,
    StoredObject,
    current_files,
    export_lines,
    export_root,
    period_of,
    pull_exports,
)
from collectors.billing.stream import TableReader
from collectors.errors import InputError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BASIS_OF_TYPE: dict[str, azure_cost.Basis] = {
    "actualcost": "actual",
    "usage": "actual",
    "amortizedcost": "amortized",
}


@dataclass(frozen=True)
class AzurePullOptions:
    """What to pull (built from the [azure] configuration by the CLI)."""

    storage_account: str = ""
    container: str = ""
    export_prefix: str = ""
    connection_string_env: str = ""
    account_url: str = ""  # empty: https://<storage_account>.blob.core.windows.net
    tag_key: str = "workload"


class BlobStore:
    """A Blob Storage container as the export pull's `ObjectStore` (azure-storage-blob)."""

    def __init__(self, container: Any, account: str) -> None:
        self.container = container
        self.account = account

    @property
    def location(self) -> str:
        return f"azure://{self.account}/{self.container.container_name}"

    @property
    def state_key(self) -> str:
        return self.location

    def list(self, prefix: str) -> list[StoredObject]:
        return [
            StoredObject(b.name, b.etag, int(b.size), b.last_modified)
            for b in self.container.list_blobs(name_starts_with=prefix or None)
        ]

    def read(self, key: str) -> bytes:
        data: bytes = self.container.download_blob(key).readall()
        return data

    def download(self, obj: StoredObject, local: Path) -> None:
        """Exactly the version listed: the download fails if the blob's ETag changed."""
        from azure.core import MatchConditions

        stream = self.container.download_blob(
            obj.key, etag=obj.etag, match_condition=MatchConditions.IfNotModified
        )
        with open(local, "wb") as fh:
            for part in stream.chunks():
                fh.write(part)


class AzureLayout:
    """Cost Management's export folders (the module docstring), read as FOCUS or cost details."""

    section = "azure"

    def __init__(self) -> None:
        self.basis: dict[str, azure_cost.Basis] = {}  # data blob -> its export's cost basis

    def export_root(self, key: str) -> str | None:
        return export_root(key)

    def period_of(self, key: str) -> str | None:
        return period_of(key)

    def current_files(
        self, store: ObjectStore, objects: list[StoredObject]
    ) -> tuple[list[StoredObject], str | None]:
        manifests = [o for o in objects if o.key.rsplit("/", 1)[-1].lower() == MANIFEST]
        if manifests:
            newest = max(manifests, key=lambda o: (o.last_modified, o.key))  # ties: by name
            listed, basis = self._manifest(store, newest, {o.key for o in objects})
            if listed is not None:
                files, why = current_files(objects, listed)
                self.basis.update({o.key: basis for o in files if basis})
                return files, why
        return _newest_run(objects)

    def _manifest(
        self, store: ObjectStore, manifest: StoredObject, keys: set[str]
    ) -> tuple[set[str] | None, azure_cost.Basis | None]:
        """The blobs a run's manifest lists (names may start with the container's) and its
        export's cost basis."""
        try:
            doc = json.loads(store.read(manifest.key))
            names = {str(b["blobName"]) for b in doc.get("blobs", [])}
            kind = str((doc.get("exportConfig") or {}).get("type", "")).lower()
        except Exception as exc:  # a broken manifest falls back to the folder listing
            log.warning("%s/%s: unreadable manifest (%s)", store.location, manifest.key, exc)
            return None, None
        names = {n if n in keys else n.split("/", 1)[-1] for n in names}
        return (names or None), BASIS_OF_TYPE.get(kind)

    def chunks(self, local: Path, uri: str, tag_key: str) -> Iterator[pl.DataFrame]:
        key = uri.split("/", 4)[-1]  # azure://<account>/<container>/<key>
        basis = self.basis.get(key) or azure_cost.basis_of_name(key)
        return export_chunks(local, uri, tag_key, basis)


def _newest_run(objects: list[StoredObject]) -> tuple[list[StoredObject], str | None]:
    """Without a manifest: the newest run folder's files, or the newest file where runs write
    straight into the date-range folder (one file per run)."""
    files, why = current_files(objects, None)
    folder = files[0].key.rsplit("/", 1)[0] if files else ""
    if re.fullmatch(r"\d{8}-\d{8}", folder.rsplit("/", 1)[-1]):
        return [max(files, key=lambda o: (o.last_modified, o.key))], why
    return files, why


def export_chunks(
    local: Path, uri: str, tag_key: str, basis: azure_cost.Basis
) -> Iterator[pl.DataFrame]:
    """One export file's rows, FOCUS or cost details by its columns; errors name `uri`."""
    try:
        reader = TableReader(local)
        kind = billing_formats.identify(reader.columns)
        if kind == "focus":
            yield from focus.read_focus_chunks(local, tag_key=tag_key, reader=reader)
        elif kind == "azure_cost":
            yield from azure_cost.read_chunks(local, tag_key=tag_key, reader=reader, basis=basis)
        else:
            raise InputError(local, "neither a FOCUS nor an Azure cost details export")
    except InputError as exc:
        text = str(exc)
        rest = text[len(str(local)) + 2 :] if text.startswith(str(local)) else text
        out = InputError(uri, rest)
        out.row, out.column = exc.row, exc.column
        raise out from None


def container_client(opts: AzurePullOptions) -> Any:
    """The export container, with credentials only from the SDK's own chain: a connection string
    from the environment variable named in [azure] connection_string_env, else
    DefaultAzureCredential."""
    from azure.storage.blob import BlobServiceClient

    if opts.connection_string_env:
        conn = os.environ.get(opts.connection_string_env, "")
        if not conn:
            raise InputError(
                "[azure] connection_string_env",
                f"the environment variable {opts.connection_string_env} is not set",
            )
        service = BlobServiceClient.from_connection_string(conn)
    else:
        from azure.identity import DefaultAzureCredential

        url = opts.account_url or f"https://{opts.storage_account}.blob.core.windows.net"
        service = BlobServiceClient(url, credential=DefaultAzureCredential())
    return service.get_container_client(opts.container)


def describe_error(exc: Exception) -> str:
    """An Azure SDK error in words, with the role to grant where Azure denied access."""
    code = getattr(exc, "error_code", None) or getattr(exc, "status_code", "")
    message = str(getattr(exc, "message", "") or exc).splitlines()[0][:300]
    if str(code) in ("AuthorizationPermissionMismatch", "AuthorizationFailure", "403"):
        return f"access denied ({message}): grant 'Storage Blob Data Reader' as in docs/azure.md"
    return (
        f"{type(exc).__name__}: {code}: {message}" if code else f"{type(exc).__name__}: {message}"
    )


def pull_azure(
    opts: AzurePullOptions,
    state: Any,
    spool_dir: Path,
    work_dir: Path,
    *,
    container: Any = None,
) -> PullReport:
    """Take every new or restated billing period of the export under [azure] export_prefix."""
    from azure.core.exceptions import AzureError

    report = PullReport()
    try:
        store = BlobStore(container or container_client(opts), opts.storage_account or "local")
        results = pull_exports(
            store,
            AzureLayout(),
            opts.export_prefix,
            state,
            spool_dir,
            work_dir,
            batch_name=f"azure-export-{opts.storage_account or 'local'}",
            tag_key=opts.tag_key,
        )
    except AzureError as exc:
        report.lines.append(PullLine("export", "", "", 0, 0, f"error: {describe_error(exc)}"))
        return report
    export_lines(results, store.location, report)
    return report
