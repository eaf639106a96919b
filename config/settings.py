"""Load and validate `config/gpuledger.toml`.

Every key has a default here and a comment in the shipped file; `tests/config/test_settings.py`
checks that the two agree. A bad value raises `ConfigError` naming the file and the key, which the
CLI turns into exit status 2.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from collectors.gpu import sources as gpu_sources

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = Path("config/gpuledger.toml")
ENV_CONFIG = "GPULEDGER_CONFIG"


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the file and the key."""


def _between(lo: float, hi: float):
    def check(v: Any) -> str | None:
        return None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"

    return check


def _one_of(*options: str):
    def check(v: Any) -> str | None:
        return None if v in options else f"must be one of {', '.join(options)}"

    return check


def _gpu_source(v: Any) -> str | None:
    """`auto` or a registered GPU source (collectors/gpu/sources.py)."""
    return _one_of(gpu_sources.AUTO, *gpu_sources.names())(v)


def _file_mode(v: Any) -> str | None:
    """An octal file mode the owner can read and write, nobody can execute and others cannot
    write: "0600" (the default), "0640" (a group reads), "0660"."""
    if not re.fullmatch(r"0?[0-7]{3}", v):
        return 'must be an octal file mode such as "0600" or "0640"'
    mode = int(v, 8)
    if mode & 0o600 != 0o600 or mode & 0o111 or mode & 0o002:
        return "must let the owner read and write, nobody execute and others not write"
    return None


def _networks(v: Any) -> str | None:
    """IP addresses or networks (CIDR), e.g. ["127.0.0.1", "10.0.0.0/24", "::1"]."""
    import ipaddress

    for item in v:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"must list IP addresses or networks (CIDR); {item!r} is neither"
    return None


def _meta(help_: str, check=None) -> dict[str, Any]:
    return {"help": help_, "check": check}


@dataclass(frozen=True)
class WarehouseConfig:
    path: str = field(default="../data/warehouse.duckdb", metadata=_meta("the DuckDB file"))
    spool_dir: str = field(default="", metadata=_meta("spool; empty: <warehouse dir>/spool"))
    snapshot_path: str = field(
        default="", metadata=_meta("read-only snapshot; empty: <warehouse dir>/dashboard.duckdb")
    )
    snapshot_days: int = field(
        default=35, metadata=_meta("days of minute rollups in the snapshot", _between(1, 400))
    )
    file_mode: str = field(
        default="0600", metadata=_meta("mode of every file gpuledger writes", _file_mode)
    )


@dataclass(frozen=True)
class CollectConfig:
    source: str = field(
        default="auto",
        metadata=_meta("sampling source", _gpu_source),
    )
    interval_s: float = field(default=1.0, metadata=_meta("sampling interval", _between(0.2, 60)))
    flush_interval_s: float = field(
        default=5.0, metadata=_meta("spool flush interval", _between(0.2, 300))
    )
    host_id: str = field(default="", metadata=_meta("host id; empty: detect"))
    prometheus_url: str = field(default="", metadata=_meta("dcgm-exporter /metrics URL"))


@dataclass(frozen=True)
class DemoConfig:
    mode: str = field(default="auto", metadata=_meta("demo fleet", _one_of("auto", "on", "off")))
    seed: int = field(default=42, metadata=_meta("simulation seed", _between(0, 2**31 - 1)))
    history_days: int = field(default=14, metadata=_meta("days of history", _between(1, 90)))
    history_interval_s: int = field(
        default=10, metadata=_meta("history sample interval", _between(1, 300))
    )


@dataclass(frozen=True)
class RunConfig:
    ingest_interval_s: float = field(
        default=5.0, metadata=_meta("spool ingest period", _between(1, 3600))
    )
    publish_interval_s: float = field(
        default=10.0, metadata=_meta("snapshot publish period", _between(1, 3600))
    )


@dataclass(frozen=True)
class DashboardConfig:
    host: str = field(default="127.0.0.1", metadata=_meta("bind address"))
    port: int = field(default=8501, metadata=_meta("port", _between(1, 65535)))
    refresh_s: float = field(default=3.0, metadata=_meta("live refresh", _between(1, 60)))
    auth: str = field(
        default="none", metadata=_meta("who may look", _one_of("none", "oidc", "proxy"))
    )
    proxy_header: str = field(
        default="X-Forwarded-User", metadata=_meta("header a trusted proxy sets")
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(), metadata=_meta("addresses or networks of the proxy", _networks)
    )


@dataclass(frozen=True)
class EnergyConfig:
    price_per_kwh: float = field(default=0.15, metadata=_meta("USD per kWh", _between(0, 10)))
    pue: float = field(default=1.4, metadata=_meta("power usage effectiveness", _between(1, 3)))


@dataclass(frozen=True)
class LocalHost:
    name: str = field(default="", metadata=_meta("host id as the agent reports it"))
    gpu_model: str = field(default="", metadata=_meta("GPU class in the catalog"))
    gpu_count: int = field(default=1, metadata=_meta("GPUs in the host", _between(1, 64)))
    purchase_usd: float = field(
        default=math.nan, metadata=_meta("purchase price of the GPUs; empty: catalog")
    )
    depreciation_years: float = field(
        default=math.nan, metadata=_meta("years; empty: [local] default")
    )
    ops_usd_per_gpu_hour: float = field(
        default=math.nan, metadata=_meta("operations; empty: [local] default")
    )


@dataclass(frozen=True)
class LocalConfig:
    depreciation_years: float = field(
        default=3.0, metadata=_meta("default depreciation", _between(0.5, 15))
    )
    ops_usd_per_gpu_hour: float = field(
        default=0.10, metadata=_meta("default operations cost", _between(0, 100))
    )
    hosts: tuple[LocalHost, ...] = field(default=(), metadata=_meta("local GPU hosts"))


@dataclass(frozen=True)
class CatalogConfig:
    path: str = field(default="catalog.csv", metadata=_meta("price catalog"))
    max_age_days: int = field(
        default=180, metadata=_meta("warn when the catalog is older", _between(1, 3650))
    )


@dataclass(frozen=True)
class WorkloadsConfig:
    tag_key: str = field(default="workload", metadata=_meta("cloud resource tag key"))
    sensitive: tuple[str, ...] = field(default=(), metadata=_meta("never to the cloud"))
    interruptible: tuple[str, ...] = field(
        default=(), metadata=_meta("may run on spot capacity (interruptions are acceptable)")
    )
    rules: tuple[dict[str, Any], ...] = field(default=(), metadata=_meta("attribution rules"))


@dataclass(frozen=True)
class AwsAccount:
    id: str = field(default="", metadata=_meta("12-digit account id"))
    name: str = field(default="", metadata=_meta("label"))
    role_arn: str = field(default="", metadata=_meta("role to assume; empty: the caller's own"))


@dataclass(frozen=True)
class AwsConfig:
    enabled: bool = field(default=False, metadata=_meta("pull AWS billing"))
    region: str = field(default="us-east-1", metadata=_meta("API region"))
    profile: str = field(default="", metadata=_meta("boto3 profile; empty: the default chain"))
    accounts: tuple[AwsAccount, ...] = field(default=(), metadata=_meta("accounts to pull"))
    use_organizations: bool = field(default=False, metadata=_meta("accounts from Organizations"))
    organizations_role_name: str = field(
        default="", metadata=_meta("role assumed in each Organizations account")
    )
    cost_explorer: bool = field(default=True, metadata=_meta("pull Cost Explorer"))
    ce_trailing_days: int = field(
        default=3, metadata=_meta("days re-pulled every run", _between(0, 60))
    )
    ce_rebuild_days: int = field(
        default=7, metadata=_meta("days between month-to-date rebuilds", _between(1, 31))
    )
    ce_with_resources: bool = field(default=False, metadata=_meta("resource ids, last 14 days"))
    ce_interval_h: float = field(
        default=24.0, metadata=_meta("daemon: hours between Cost Explorer pulls", _between(1, 720))
    )
    export_bucket: str = field(default="", metadata=_meta("S3 bucket of CUR 2.0/FOCUS exports"))
    export_prefix: str = field(default="", metadata=_meta("S3 prefix of the export"))
    pull_interval_h: float = field(
        default=6.0, metadata=_meta("daemon: hours between export pulls", _between(0.25, 168))
    )


def _env_name(v: Any) -> str | None:
    """Empty, or the name of an environment variable (never the secret itself)."""
    if v == "" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
        return None
    return "must name an environment variable (the secret is read from it, never from here)"


def _bq_table(v: Any) -> str | None:
    if v == "" or re.fullmatch(r"[A-Za-z0-9_.:-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_$-]+", v):
        return None
    return "must be project.dataset.table"


@dataclass(frozen=True)
class AzureConfig:
    enabled: bool = field(default=False, metadata=_meta("pull Azure billing"))
    storage_account: str = field(default="", metadata=_meta("storage account of the exports"))
    container: str = field(default="", metadata=_meta("container of the exports"))
    export_prefix: str = field(default="", metadata=_meta("folder of one export"))
    connection_string_env: str = field(
        default="", metadata=_meta("env var holding a connection string", _env_name)
    )
    account_url: str = field(default="", metadata=_meta("Blob endpoint; empty: Azure public"))
    pull_interval_h: float = field(
        default=6.0, metadata=_meta("daemon: hours between export pulls", _between(0.25, 168))
    )


@dataclass(frozen=True)
class GcpConfig:
    enabled: bool = field(default=False, metadata=_meta("pull Google Cloud billing"))
    project: str = field(default="", metadata=_meta("project the clients bill requests to"))
    bucket: str = field(default="", metadata=_meta("Cloud Storage bucket of billing files"))
    export_prefix: str = field(default="", metadata=_meta("folder of one export's months"))
    bigquery_table: str = field(
        default="", metadata=_meta("project.dataset.table of the detailed export", _bq_table)
    )
    bq_trailing_days: int = field(
        default=3, metadata=_meta("days re-read every BigQuery pull", _between(0, 60))
    )
    bq_rebuild_days: int = field(
        default=7, metadata=_meta("days between month-to-date rebuilds", _between(1, 31))
    )
    pull_interval_h: float = field(
        default=6.0, metadata=_meta("daemon: hours between pulls", _between(0.25, 168))
    )


@dataclass(frozen=True)
class LogConfig:
    level: str = field(
        default="INFO", metadata=_meta("log level", _one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    )


@dataclass(frozen=True)
class ThresholdsConfig:
    idle_activity_pct: float = field(
        default=10.0, metadata=_meta("activity under which a GPU minute is idle", _between(0, 100))
    )
    idle_min_minutes: int = field(
        default=30, metadata=_meta("idle minutes before allocated-idle", _between(1, 1440))
    )
    busy_util_pct: float = field(
        default=50.0, metadata=_meta("utilization.gpu that counts as busy", _between(0, 100))
    )
    inefficient_sm_active_pct: float = field(
        default=50.0, metadata=_meta("SM active under which busy is inefficient", _between(0, 100))
    )
    inefficient_min_minutes: int = field(
        default=30, metadata=_meta("minutes before inefficient-busy", _between(1, 1440))
    )
    overpowered_min_minutes: int = field(
        default=60, metadata=_meta("minutes before over-powered", _between(1, 10080))
    )


@dataclass(frozen=True)
class EmailConfig:
    """Where a feature's email goes: an SMTP server and the recipients ([alerts.email] and
    [report.email] are this one table)."""

    host: str = field(default="", metadata=_meta("SMTP server; empty: no email"))
    port: int = field(default=587, metadata=_meta("SMTP port", _between(1, 65535)))
    starttls: bool = field(default=True, metadata=_meta("STARTTLS before login"))
    user: str = field(default="", metadata=_meta("SMTP user; empty: no login"))
    password_env: str = field(default="", metadata=_meta("env var: SMTP password"))
    sender: str = field(default="gpuledger@localhost", metadata=_meta("sender address"))
    recipients: tuple[str, ...] = field(default=(), metadata=_meta("recipient addresses"))

    @property
    def enabled(self) -> bool:
        """A server and at least one recipient: mail can go out."""
        return bool(self.host and self.recipients)


@dataclass(frozen=True)
class AlertsConfig:
    enabled: bool = field(default=True, metadata=_meta("check for waste in the daemon"))
    check_interval_s: float = field(
        default=60.0, metadata=_meta("seconds between checks", _between(10, 3600))
    )
    backfill_hours: int = field(
        default=24, metadata=_meta("first check looks back", _between(1, 720))
    )
    cooldown_minutes: int = field(
        default=30, metadata=_meta("quiet time after a resolved alert", _between(0, 10080))
    )
    digest: bool = field(default=False, metadata=_meta("send a daily digest"))
    digest_hour_utc: int = field(default=8, metadata=_meta("digest hour", _between(0, 23)))
    log: bool = field(default=True, metadata=_meta("write alerts to the log"))
    slack_webhook_url_env: str = field(default="", metadata=_meta("env var: Slack webhook URL"))
    webhook_url_env: str = field(default="", metadata=_meta("env var: JSON webhook URL"))
    webhook_token_env: str = field(default="", metadata=_meta("env var: webhook bearer token"))
    email: EmailConfig = field(default=EmailConfig(), metadata=_meta("email alerts"))
    attempts: int = field(default=5, metadata=_meta("delivery attempts", _between(1, 20)))
    retry_backoff_s: float = field(
        default=2.0, metadata=_meta("first retry delay, doubled each time", _between(0, 600))
    )
    timeout_s: float = field(default=10.0, metadata=_meta("network timeout", _between(1, 120)))


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = field(default=True, metadata=_meta("serve /metrics in `gpuledger run`"))
    port: int = field(default=9464, metadata=_meta("port on 127.0.0.1", _between(1, 65535)))


@dataclass(frozen=True)
class AdvisorConfig:
    window_days: int = field(
        default=30, metadata=_meta("days a recommendation looks back", _between(1, 365))
    )
    min_saving_usd: float = field(
        default=100.0, metadata=_meta("smallest monthly saving recommended", _between(0, 1e9))
    )
    min_saving_pct: float = field(
        default=15.0, metadata=_meta("smallest saving, % of current cost", _between(0, 100))
    )
    memory_headroom_pct: float = field(
        default=10.0, metadata=_meta("memory headroom above the peak", _between(0, 100))
    )
    max_projected_busy_pct: float = field(
        default=70.0, metadata=_meta("busy ceiling on a slower GPU", _between(1, 100))
    )
    buy_min_duty_pct: float = field(
        default=50.0, metadata=_meta("duty cycle that justifies buying", _between(0, 100))
    )
    active_hour_busy_pct: float = field(
        default=10.0, metadata=_meta("busy share that makes an hour active", _between(0, 100))
    )
    contention_idle_pct: float = field(
        default=5.0, metadata=_meta("spare share under which a class is full", _between(0, 100))
    )
    saturated_busy_pct: float = field(
        default=80.0, metadata=_meta("busy share of a workload waiting for more", _between(0, 100))
    )
    clouds: tuple[str, ...] = field(
        default=(), metadata=_meta("clouds whose machines may be proposed; empty: the billed ones")
    )
    buy_overhead_pct: float = field(
        default=30.0, metadata=_meta("server, network, rack beyond the GPUs", _between(0, 500))
    )
    commit_min_days: int = field(
        default=14, metadata=_meta("days observed before a commitment", _between(1, 365))
    )
    spot_max_job_minutes: float = field(
        default=60.0, metadata=_meta("short jobs that suit spot capacity", _between(1, 10080))
    )


@dataclass(frozen=True)
class ReportConfig:
    dir: str = field(default="../reports", metadata=_meta("where weekly reports are written"))
    weekly: bool = field(default=True, metadata=_meta("the daemon writes the weekly report"))
    catch_up_weeks: int = field(
        default=4, metadata=_meta("missed weeks written at start-up", _between(0, 52))
    )
    email: EmailConfig = field(default=EmailConfig(), metadata=_meta("the report by email"))
    timeout_s: float = field(default=30.0, metadata=_meta("SMTP timeout", _between(1, 300)))


@dataclass(frozen=True)
class RetentionConfig:
    raw_days: int = field(
        default=14, metadata=_meta("days raw samples stay in the warehouse", _between(1, 3650))
    )
    compact_min_files: int = field(
        default=50, metadata=_meta("small spool files that trigger a merge", _between(2, 100000))
    )
    compact_quantize: bool = field(
        default=True, metadata=_meta("round measured values in compacted spool files")
    )
    spool_days: int = field(
        default=0, metadata=_meta("days of spool kept; 0: forever", _between(0, 36500))
    )
    interval_s: float = field(
        default=3600.0, metadata=_meta("seconds between retention runs", _between(60, 86400))
    )


@dataclass(frozen=True)
class ShipConfig:
    target: str = field(default="", metadata=_meta("where agents ship spool batches"))
    interval_s: float = field(
        default=10.0, metadata=_meta("seconds between shipping runs", _between(1, 3600))
    )
    pull_from: str = field(default="", metadata=_meta("s3:// prefix the daemon pulls from"))
    pull_days: int = field(
        default=3, metadata=_meta("days of S3 partitions the puller lists", _between(1, 400))
    )


@dataclass(frozen=True)
class EngineConfig:
    mode: str = field(
        default="local", metadata=_meta("where the ledger's jobs run", _one_of("local", "ray"))
    )
    address: str = field(
        default="", metadata=_meta("Ray cluster address; empty: a local Ray for the run")
    )
    max_retries: int = field(
        default=3, metadata=_meta("retries of a Ray task whose worker died", _between(0, 100))
    )


def _lake_warehouse(v: Any) -> str | None:
    """ "" (beside the warehouse), a folder, or an s3:// prefix with a bucket."""
    if "://" in v and not (v.startswith("s3://") and len(v) > len("s3://")):
        return "must be a folder or an s3://bucket/prefix"
    return None


@dataclass(frozen=True)
class LakeConfig:
    enabled: bool = field(default=False, metadata=_meta("raw samples and bills in Iceberg"))
    warehouse: str = field(
        default="", metadata=_meta("folder or s3:// prefix; empty: <db dir>/lake", _lake_warehouse)
    )
    catalog: str = field(
        default="sql", metadata=_meta("Iceberg catalog", _one_of("sql", "glue", "rest"))
    )
    catalog_uri: str = field(
        default="", metadata=_meta("sql: SQLAlchemy URL (empty: SQLite beside the lake); rest: URL")
    )
    namespace: str = field(default="gpuledger", metadata=_meta("namespace (Glue database)"))
    region: str = field(default="", metadata=_meta("AWS region of the bucket and Glue"))
    s3_endpoint: str = field(default="", metadata=_meta("S3-compatible endpoint (MinIO)"))
    commit_interval_s: float = field(
        default=60.0, metadata=_meta("seconds between the daemon's lake commits", _between(1, 3600))
    )
    snapshot_days: int = field(
        default=1, metadata=_meta("days of table snapshots kept", _between(1, 3650))
    )
    compact_min_files: int = field(
        default=8,
        metadata=_meta("data files of a partition that trigger a rewrite", _between(2, 100000)),
    )
    interval_s: float = field(
        default=3600.0, metadata=_meta("seconds between lake maintenance runs", _between(60, 86400))
    )

    def __post_init__(self) -> None:
        if self.catalog == "rest" and not self.catalog_uri:
            raise ConfigError('[lake] catalog_uri must be set when catalog = "rest"')
        if self.catalog == "glue" and self.warehouse and not self.warehouse.startswith("s3://"):
            raise ConfigError('[lake] warehouse must be an s3:// prefix when catalog = "glue"')
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.namespace):
            raise ConfigError(
                f"[lake] namespace must be letters, digits and _, got {self.namespace!r}"
            )


@dataclass(frozen=True)
class Config:
    warehouse: WarehouseConfig = WarehouseConfig()
    collect: CollectConfig = CollectConfig()
    demo: DemoConfig = DemoConfig()
    run: RunConfig = RunConfig()
    dashboard: DashboardConfig = DashboardConfig()
    energy: EnergyConfig = EnergyConfig()
    local: LocalConfig = LocalConfig()
    catalog: CatalogConfig = CatalogConfig()
    workloads: WorkloadsConfig = WorkloadsConfig()
    aws: AwsConfig = AwsConfig()
    azure: AzureConfig = AzureConfig()
    gcp: GcpConfig = GcpConfig()
    log: LogConfig = LogConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()
    advisor: AdvisorConfig = AdvisorConfig()
    report: ReportConfig = ReportConfig()
    retention: RetentionConfig = RetentionConfig()
    ship: ShipConfig = ShipConfig()
    engine: EngineConfig = EngineConfig()
    lake: LakeConfig = LakeConfig()
    source: str = ""  # the file it came from, for messages

    # Derived paths: relative paths are relative to the configuration file's directory ------
    @property
    def base_dir(self) -> Path:
        return Path(self.source).resolve().parent if self.source else CONFIG_DIR

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def db_path(self) -> Path:
        return self.resolve(self.warehouse.path)

    @property
    def spool_dir(self) -> Path:
        if self.warehouse.spool_dir:
            return self.resolve(self.warehouse.spool_dir)
        return self.db_path.parent / "spool"

    @property
    def snapshot_path(self) -> Path:
        if self.warehouse.snapshot_path:
            return self.resolve(self.warehouse.snapshot_path)
        return self.db_path.parent / "dashboard.duckdb"

    @property
    def billing_state_path(self) -> Path:
        """The AWS pull state: `billing_state.duckdb` beside the warehouse, or named after it
        where its spool is (a `--db` warehouse: `with_db`)."""
        if self.spool_dir == beside_db(self.db_path, ".spool"):
            return beside_db(self.db_path, ".billing_state.duckdb")
        return self.db_path.parent / "billing_state.duckdb"

    @property
    def catalog_path(self) -> Path:
        return self.resolve(self.catalog.path)

    @property
    def lake_warehouse(self) -> str:
        """[lake] warehouse as a URI pyiceberg takes: s3://… as written, a folder as file://."""
        where = self.lake.warehouse
        if where.startswith("s3://"):
            return where.rstrip("/")
        folder = self.resolve(where) if where else self.db_path.parent / "lake"
        return folder.as_uri()

    @property
    def lake_catalog_uri(self) -> str:
        """[lake] catalog_uri, for the SQL catalog by default a SQLite file beside the warehouse."""
        if self.lake.catalog_uri or self.lake.catalog != "sql":
            return self.lake.catalog_uri
        return f"sqlite:///{self.db_path.parent / 'lake_catalog.db'}"


SECTIONS = {f.name: f.type for f in fields(Config) if f.name != "source"}


def documented_keys() -> set[str]:
    """Every `section.key` the loader knows (array-of-table members as `local.hosts.*`)."""
    keys: set[str] = set()
    for section in fields(Config):
        if section.name == "source":
            continue
        for f in fields(_section_class(section.name)):
            if is_dataclass(f.default):  # a table of its own: [alerts.email]
                keys.update(f"{section.name}.{f.name}.{g.name}" for g in fields(f.default))
                continue
            keys.add(f"{section.name}.{f.name}")
            if f.name == "hosts":
                keys.update(f"local.hosts.{h.name}" for h in fields(LocalHost))
    return keys


def _section_class(name: str) -> type:
    return {f.name: f.default.__class__ for f in fields(Config) if f.name != "source"}[name]


def _coerce(where: str, f, value: Any) -> Any:
    """Type-check one value against a dataclass field; returns the value in its final type."""
    default = f.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    check = f.metadata.get("check")
    if check is not None:
        problem = check(value)
        if problem:
            raise ConfigError(f"{where} {problem}, got {value!r}")
    return value


# Keys that moved elsewhere: a configuration that still sets one is told where it went.
def _moved_to_email(section: str) -> dict[str, str]:
    """The flat SMTP keys [alerts] and [report] had, each told its place in [<section>.email]."""
    moved = {f"smtp_{k}": k for k in ("host", "port", "starttls", "user", "password_env")}
    moved |= {"email_from": "sender", "email_to": "recipients"}
    return {
        old: f"is now {new} in [{section}.email] (the SMTP settings are one table: docs/alerts.md)"
        for old, new in moved.items()
    }


RETIRED_KEYS: dict[str, dict[str, str]] = {
    "ThresholdsConfig": {
        "high_end_classes": "is no longer read: the high-end GPU classes now live in the"
        " catalog's high_end column (config/catalog.csv, docs/catalog.md); remove the key",
    },
    "AlertsConfig": _moved_to_email("alerts"),
    "ReportConfig": _moved_to_email("report"),
}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    retired = RETIRED_KEYS.get(cls.__name__, {})
    moved = sorted(set(data) & set(retired))
    if moved:
        raise ConfigError(f"{where} {moved[0]} {retired[moved[0]]}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where} has unknown key {unknown[0]!r} (known: {', '.join(known)})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = known[name]
        key_where = f"{where} {name}"
        if name == "hosts":
            if not isinstance(value, list):
                raise ConfigError(f"{key_where} must be an array of tables ([[local.hosts]])")
            kwargs[name] = tuple(_build_host(item, i) for i, item in enumerate(value))
        elif name == "rules":
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                raise ConfigError(f"{key_where} must be an array of tables ([[workloads.rules]])")
            from collectors.gpu.workload_rules import validate_rules  # the collectors' own checks

            try:
                validate_rules(value)
            except ValueError as exc:
                raise ConfigError(f"{where} {exc}") from None
            kwargs[name] = tuple(dict(r) for r in value)
        elif name == "clouds":
            kwargs[name] = _clouds(key_where, value)
        elif name in ("sensitive", "interruptible"):
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ConfigError(f"{key_where} must be a list of workload names")
            kwargs[name] = tuple(value)
        elif name == "accounts":
            if not isinstance(value, list):
                raise ConfigError(f"{key_where} must be an array of tables ([[aws.accounts]])")
            kwargs[name] = tuple(_build_account(item, i) for i, item in enumerate(value))
        elif name in ("recipients", "trusted_proxies"):
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ConfigError(f"{key_where} must be a list of strings")
            kwargs[name] = _coerce(key_where, f, tuple(value))
        elif is_dataclass(f.default):  # a table of its own: [alerts.email]
            kwargs[name] = _build(type(f.default), value, f"{where[:-1]}.{name}]")
        else:
            kwargs[name] = _coerce(key_where, f, value)
    return cls(**kwargs)


def _clouds(where: str, value: Any) -> tuple[str, ...]:
    """[advisor] clouds: a list of cloud names (tables/clouds.py), each once."""
    from tables.clouds import CLOUDS

    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ConfigError(f"{where} must be a list of cloud names ({', '.join(CLOUDS)})")
    unknown = [s for s in value if s not in CLOUDS]
    if unknown:
        raise ConfigError(f"{where} names {unknown[0]!r}: the clouds are {', '.join(CLOUDS)}")
    return tuple(dict.fromkeys(value))


def _build_host(item: Any, index: int) -> LocalHost:
    label = item.get("name") if isinstance(item, dict) else None
    where = (
        f"[local.hosts.{label}]"
        if isinstance(label, str) and label
        else (f"[[local.hosts]] #{index + 1}")
    )
    host = _build(LocalHost, item, where)
    if not host.name:
        raise ConfigError(f"{where} name is required")
    if not host.gpu_model:
        raise ConfigError(f"{where} gpu_model is required")
    return host


def _build_account(item: Any, index: int) -> AwsAccount:
    label = item.get("id") if isinstance(item, dict) else None
    where = (
        f"[aws.accounts.{label}]"
        if isinstance(label, str) and label
        else f"[[aws.accounts]] #{index + 1}"
    )
    account = _build(AwsAccount, item, where)
    if not re.fullmatch(r"\d{12}", account.id):
        raise ConfigError(f"{where} id must be a 12-digit AWS account id, got {account.id!r}")
    arn = r"arn:aws[a-z-]*:iam::\d{12}:role/\S+"
    if account.role_arn and not re.fullmatch(arn, account.role_arn):
        raise ConfigError(
            f"{where} role_arn must look like arn:aws:iam::123456789012:role/NAME, "
            f"got {account.role_arn!r}"
        )
    return account


def load_config(path: str | Path | None = None, *, db: str | Path | None = None) -> Config:
    """Read and validate the configuration.

    `path` defaults to $GPULEDGER_CONFIG, else `config/gpuledger.toml` when it exists, else
    the built-in defaults. `db` overrides `[warehouse] path` (the CLI's `--db`).
    """
    if path is None:
        path = os.environ.get(ENV_CONFIG) or (
            DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else CONFIG_DIR / "gpuledger.toml"
        )
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _warn_if_exposed(path, raw)
    try:
        sections: dict[str, Any] = {}
        unknown = sorted(set(raw) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
        for name, value in raw.items():
            sections[name] = _build(_section_class(name), value, f"[{name}]")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    cfg = Config(**sections, source=str(path))
    if db is not None:
        cfg = with_db(cfg, db)
    return cfg


def _warn_if_exposed(path: Path, raw: dict) -> None:
    """Say so when the file holds what looks like a secret and others can read it."""
    import logging

    from config.exposure import exposure_warning

    warning = exposure_warning(path, raw)
    if warning:
        logging.getLogger("gpuledger.config").warning(warning)


def beside_db(db: Path, suffix: str) -> Path:
    """A file or folder named after the warehouse `db`: `beside_db(a.duckdb, ".spool")` is
    `a.spool` in the same folder."""
    return db.parent / f"{db.stem}{suffix}"


def with_db(cfg: Config, db: str | Path) -> Config:
    """The configuration with the warehouse `db` (the CLI's `--db`).

    Another file than the configured warehouse is a warehouse of its own: its spool
    (`<name>.spool/`), snapshot (`<name>.snapshot.duckdb`) and AWS pull state
    (`<name>.billing_state.duckdb`) sit beside it, named after it, whatever `[warehouse]`
    spool_dir and snapshot_path say, so two warehouses in one folder never take each other's
    files. The configured warehouse itself keeps the configured layout.
    """
    from dataclasses import replace

    path = Path(db).expanduser().resolve()
    if path == cfg.db_path:
        return cfg
    warehouse = replace(
        cfg.warehouse,
        path=str(path),
        spool_dir=str(beside_db(path, ".spool")),
        snapshot_path=str(beside_db(path, ".snapshot.duckdb")),
    )
    return replace(cfg, warehouse=warehouse)


def as_dict(obj: Any) -> Any:
    """A plain-data view (for `doctor` and the Settings page)."""
    if is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [as_dict(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
