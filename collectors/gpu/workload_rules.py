"""Ordered rules that name the workload a GPU process belongs to (DESIGN.md §2 "Workload").

A rule is a dict from the configuration:

    {"match": "env", "key": "GPULEDGER_WORKLOAD"}
    {"match": "slurm_job"}
    {"match": "k8s_namespace", "pattern": "^team-(.*)$"}
    {"match": "k8s_pod", "pattern": "..."}
    {"match": "container", "pattern": "..."}
    {"match": "user", "pattern": "^alice$", "workload": "research"}
    {"match": "cmdline", "pattern": "jupyter", "workload": "notebooks"}

The first rule that matches wins. `pattern` is a Python regex searched in the field; without
one, any non-empty value matches. The workload is the rule's `workload` if given, else regex
group 1 when the pattern has a group, else the field value. Nothing matched:
`unattributed:<user>`.

`ProcessAttributor` applies the rules to the process rows of any source: NVML rows are read
from /proc as they are sampled; nvidia-smi rows sampled on this host are read from /proc too;
rows from elsewhere (a saved capture, a remote exporter's pod labels) are matched on what they
carry. A GPU row with processes gets the workload of its dominant process (most SM share, then
most memory, then the lowest pid).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from collectors.gpu.procinfo import UNKNOWN_USER, ProcessInfo, ProcessInfoCache
from tables.records import Batch
from tables.units import unattributed

DEFAULT_WORKLOAD_ENV = "GPULEDGER_WORKLOAD"

# match kind -> the ProcessInfo field it reads; "env" reads env[key] instead.
_FIELDS: dict[str, Callable[[ProcessInfo], str | None]] = {
    "slurm_job": lambda info: info.slurm_job,
    "k8s_namespace": lambda info: info.namespace,
    "k8s_pod": lambda info: info.pod,
    "container": lambda info: info.container,
    "user": lambda info: info.user,
    "cmdline": lambda info: info.command,
}
MATCH_KINDS = ("env", *_FIELDS)
_RULE_KEYS = ("match", "key", "pattern", "workload")

DEFAULT_RULES: tuple[dict[str, str], ...] = (
    {"match": "env", "key": DEFAULT_WORKLOAD_ENV},
    {"match": "slurm_job"},
    {"match": "k8s_namespace"},
    {"match": "k8s_pod"},
)


@dataclass(frozen=True)
class Rule:
    """One validated rule; `index` is its position in the configuration, for messages."""

    index: int
    match: str
    key: str | None = None
    pattern: re.Pattern[str] | None = None
    workload: str | None = None

    def field_value(self, info: ProcessInfo) -> str | None:
        """The text this rule looks at in `info`."""
        if self.match == "env":
            return info.env.get(self.key or "")
        return _FIELDS[self.match](info)

    def workload_for(self, info: ProcessInfo) -> str | None:
        """The workload this rule names for `info`, None when it does not match."""
        value = self.field_value(info)
        if not value:
            return None
        if self.pattern is None:
            return self.workload or value.strip() or None
        found = self.pattern.search(value)
        if found is None:
            return None
        if self.workload:
            return self.workload
        if self.pattern.groups:
            # An empty or absent group names nothing: let a later rule decide.
            return (found.group(1) or "").strip() or None
        return value.strip() or None


def validate_rules(rules: Iterable[Mapping[str, object] | Rule] | None) -> list[Rule]:
    """Check configured rules and compile their patterns; None or [] gives DEFAULT_RULES.

    Raises ValueError naming the rule by its index in the list (`rules[1]: key 'match' ...`) and
    the offending key.
    """
    given = list(rules or ())
    if not given:
        given = list(DEFAULT_RULES)
    return [r if isinstance(r, Rule) else _validate_rule(i, r) for i, r in enumerate(given)]


def _validate_rule(index: int, raw: Mapping[str, object]) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f'{where}: must be a table like {{match = "env", ...}}, got {raw!r}')
    unknown = sorted(set(raw) - set(_RULE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(_RULE_KEYS)})")
    match = raw.get("match")
    if match not in MATCH_KINDS:
        raise ValueError(
            f"{where}: key 'match' must be one of {', '.join(MATCH_KINDS)}, got {match!r}"
        )
    for name in ("key", "pattern", "workload"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{where}: key {name!r} must be a non-empty string, got {value!r}")
    if match == "env" and not raw.get("key"):
        raise ValueError(f"{where}: key 'key' (the variable name) is required for match 'env'")
    if match != "env" and raw.get("key"):
        raise ValueError(f"{where}: key 'key' applies only to match 'env', not {match!r}")
    return Rule(
        index=index,
        match=str(match),
        key=_str_or_none(raw.get("key")),
        pattern=_compile(where, raw.get("pattern")),
        workload=_str_or_none(raw.get("workload")),
    )


def _compile(where: str, pattern: object) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"{where}: key 'pattern' is not a valid regex {pattern!r}: {exc}") from exc


def _str_or_none(value: object) -> str | None:
    return str(value).strip() if value is not None else None


def resolve_workload(
    info: ProcessInfo, rules: Sequence[Rule] | Iterable[Mapping[str, object]] | None = None
) -> str:
    """The workload of `info` by the first matching rule, else `unattributed:<user>`."""
    compiled = _as_rules(rules)
    for rule in compiled:
        workload = rule.workload_for(info)
        if workload:
            return workload
    return unattributed(info.user)


def env_keys(rules: Iterable[Rule]) -> list[str]:
    """The environment variable names the rules read, so the collector reads them from /proc."""
    return [r.key for r in rules if r.match == "env" and r.key]


def _as_rules(rules: Sequence[Rule] | Iterable[Mapping[str, object]] | None) -> list[Rule]:
    given: list[Rule | Mapping[str, object]] = list(rules or ())
    compiled = [r for r in given if isinstance(r, Rule)]
    if given and len(compiled) == len(given):
        return compiled
    return validate_rules(given)


def dominant_workload(process_rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The workload of the process with the most SM share, else the most memory, else the
    lowest pid; None when there is no process."""
    if not process_rows:
        return None
    top = max(
        process_rows,
        key=lambda r: (r.get("sm_pct") or 0.0, r.get("used_mib") or 0.0, -int(r.get("pid") or 0)),
    )
    return top.get("workload")


_PROC_KEYS = ["host", "gpu_uuid", "ts"]


class ProcessAttributor:
    """Fills user, command, container, pod, namespace and workload of a batch's process rows,
    and the workload of GPU rows that have none but carry processes.

    `proc_root` is this host's /proc when the rows were sampled here (pids are this host's),
    None when they came from elsewhere. /proc is read once per process (ProcessInfoCache).
    """

    def __init__(
        self,
        rules: Iterable[Mapping[str, object] | Rule] | None = None,
        *,
        proc_root: str | Path | None = None,
        env_vars: Iterable[str] = (),
    ) -> None:
        self.rules = validate_rules(rules)
        names = sorted(set(env_vars) | set(env_keys(self.rules)))
        self._cache = (
            ProcessInfoCache(names, root=proc_root, derive=self.workload_of)
            if proc_root is not None
            else None
        )

    def workload_of(self, info: ProcessInfo) -> str:
        return resolve_workload(info, self.rules)

    def apply(self, batch: Batch) -> Batch:
        procs = batch.process_samples
        if procs.height == 0:
            return batch
        rows = [self._attribute(row) for row in procs.iter_rows(named=True)]
        if self._cache is not None:
            self._cache.keep_only(r["pid"] for r in rows if r["pid"] is not None)
        procs = pl.DataFrame(rows, schema=procs.schema)
        return Batch(_with_gpu_workloads(batch.gpu_samples, procs), procs, batch.health)

    def _attribute(self, row: dict[str, Any]) -> dict[str, Any]:
        carried = ProcessInfo(
            pid=row["pid"] or 0,
            user=row["user"] or UNKNOWN_USER,
            command=row["command"] or "",
            container=row["container"],
            pod=row["pod"],
            namespace=row["namespace"],
        )
        info, workload = carried, None
        if self._cache is not None and row["pid"] is not None:
            seen, derived = self._cache.get(row["pid"])
            if seen.user != UNKNOWN_USER:  # visible here: /proc knows more than the source
                info, workload = seen, derived
        return {
            **row,
            "user": info.user,
            "command": info.command or row["command"],
            "container": info.container,
            "pod": info.pod,
            "namespace": info.namespace,
            "workload": row["workload"] or workload or self.workload_of(info),
        }


def _with_gpu_workloads(gpus: pl.DataFrame, procs: pl.DataFrame) -> pl.DataFrame:
    """GPU rows without a workload get their dominant process's (as dominant_workload)."""
    if gpus.height == 0:
        return gpus
    top = (
        procs.sort(
            pl.col("sm_pct").fill_null(0.0),
            pl.col("used_mib").fill_null(0.0),
            pl.col("pid").fill_null(0),
            descending=[True, True, False],
            maintain_order=True,
        )
        .group_by(_PROC_KEYS, maintain_order=True)
        .agg(pl.col("workload").first().alias("_dominant"))
    )
    return (
        gpus.join(top, on=_PROC_KEYS, how="left", nulls_equal=False)
        .with_columns(workload=pl.coalesce("workload", "_dominant"))
        .select(gpus.columns)
    )
