"""Load and validate `config/gpuledger.toml`.

Every key has a default here and a comment in the shipped file; `tests/config/test_settings.py`
checks that the two agree. A bad value raises `ConfigError` naming the file and the key, which the
CLI turns into exit status 2.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class CollectConfig:
    source: str = field(
        default="auto",
        metadata=_meta("sampling source", _one_of("auto", "nvml", "smi", "prometheus", "demo")),
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
    rules: tuple[dict[str, Any], ...] = field(default=(), metadata=_meta("attribution rules"))


@dataclass(frozen=True)
class AwsConfig:
    enabled: bool = field(default=False, metadata=_meta("pull AWS billing"))
    region: str = field(default="us-east-1", metadata=_meta("API region"))


@dataclass(frozen=True)
class LogConfig:
    level: str = field(
        default="INFO", metadata=_meta("log level", _one_of("DEBUG", "INFO", "WARNING", "ERROR"))
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
    log: LogConfig = LogConfig()
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
    def catalog_path(self) -> Path:
        return self.resolve(self.catalog.path)


SECTIONS = {f.name: f.type for f in fields(Config) if f.name != "source"}


def documented_keys() -> set[str]:
    """Every `section.key` the loader knows (array-of-table members as `local.hosts.*`)."""
    keys: set[str] = set()
    for section in fields(Config):
        if section.name == "source":
            continue
        for f in fields(_section_class(section.name)):
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


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
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
            kwargs[name] = tuple(dict(r) for r in value)
        elif name == "sensitive":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ConfigError(f"{key_where} must be a list of workload names")
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = _coerce(key_where, f, value)
    return cls(**kwargs)


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


def with_db(cfg: Config, db: str | Path) -> Config:
    """The same configuration with another warehouse file (spool and snapshot follow it
    unless they were set explicitly)."""
    from dataclasses import replace

    return replace(cfg, warehouse=replace(cfg.warehouse, path=str(Path(db).resolve())))


def as_dict(obj: Any) -> Any:
    """A plain-data view (for `doctor` and the Settings page)."""
    if is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [as_dict(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
