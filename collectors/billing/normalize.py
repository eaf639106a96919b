"""Expressions that FOCUS and CUR normalization share: what the telemetry join needs from a bill
line (the instance id, the instance type) and JSON text for tags."""

from __future__ import annotations

import polars as pl

# An EC2 instance type inside a charge description ("... p4d.24xlarge Instance Hour") or a
# usage type ("USE1-BoxUsage:p4d.24xlarge", "SpotUsage:g5.xlarge").
INSTANCE_TYPE_RE = (
    r"\b([a-z][a-z0-9-]*\.(?:[0-9]*x?large|metal(?:-[0-9]+xl)?|medium|small|micro|nano))\b"
)
# Usage types that bill an instance's running time (not its EBS, data transfer or IPs).
INSTANCE_USAGE_RE = (
    r"(?:^|-)(?:BoxUsage|SpotUsage|DedicatedUsage|HostUsage|ReservedHostUsage)(?::|$)"
)
# `arn:aws:ec2:us-east-1:123456789012:instance/i-0abc…` (any partition) -> `i-0abc…`.
EC2_INSTANCE_ARN_RE = r"^arn:aws[a-z-]*:ec2:[^:]*:[^:]*:instance/(i-[0-9a-z]+)$"


# An Azure VM's ARM id `/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/
# virtualMachines/<name>` (ARM ids are case-insensitive; exports spell them both ways).
AZURE_VM_RE = (
    r"(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/"
    r"virtualmachines/([^/]+)$"
)
# A Compute Engine instance: `//compute.googleapis.com/projects/<p>/zones/<z>/instances/<x>`
# (the billing export's resource.global_name, FOCUS ResourceId) or `projects/…/instances/<x>`.
GCE_INSTANCE_RE = r"^(?://compute\.googleapis\.com/)?projects/[^/]+/zones/[^/]+/instances/([^/]+)$"


def instance_id(resource_id: pl.Expr, resource_name: pl.Expr | None = None) -> pl.Expr:
    """The resource id of a VM reduced to the host id its agent reports (DESIGN.md §2: the
    agent's host id is the bill's ResourceId), every other id unchanged:
    - an EC2 instance ARN: the instance id (the agent reads it from the DMI asset tag);
    - an Azure VM's ARM id: the VM name, lower-cased (the agent's host name; docs/azure.md);
    - a Compute Engine instance: its name, lower-cased: `resource_name` where the bill gives it
      (the global name may carry the numeric id, which the agent cannot read offline), else the
      id's last part (docs/gcp.md)."""
    gce = resource_id.str.extract(GCE_INSTANCE_RE, 1)
    gce_name = gce if resource_name is None else pl.coalesce(resource_name, gce)
    return pl.coalesce(
        resource_id.str.extract(EC2_INSTANCE_ARN_RE, 1),
        resource_id.str.extract(AZURE_VM_RE, 1).str.to_lowercase(),
        pl.when(gce.is_not_null()).then(gce_name.str.to_lowercase()),
        resource_id,
    )


def instance_type_from_usage(usage_type: pl.Expr) -> pl.Expr:
    """The instance type of an instance-hours usage type, null for any other usage type."""
    return (
        pl.when(usage_type.str.contains(INSTANCE_USAGE_RE))
        .then(usage_type.str.extract(INSTANCE_TYPE_RE, 1))
        .otherwise(pl.lit(None, pl.String))
    )


def json_string(text: pl.Expr) -> pl.Expr:
    """`text` as a JSON string literal (quotes, backslashes and control characters escaped)."""
    escaped = (
        text.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\r", "\\r", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
        .str.replace_all(r"[\x00-\x1f]", " ")
    )
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')])


def json_object(pairs: dict[str, pl.Expr]) -> pl.Expr:
    """A JSON object text of the non-null `key: value` pairs per row; null when all are null."""
    if not pairs:
        return pl.lit(None, pl.String)
    members = [
        pl.when(value.is_not_null() & (value != "")).then(
            pl.concat_str([json_string(pl.lit(key)), pl.lit(":"), json_string(value)])
        )
        for key, value in pairs.items()
    ]
    body = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.when(body != "").then(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))


def json_object_from_entries(entries: pl.Expr) -> pl.Expr:
    """A JSON object text from a list of {key, value} structs (a Parquet map column)."""
    member = pl.concat_str(
        [
            json_string(pl.element().struct.field("key")),
            pl.lit(":"),
            json_string(pl.element().struct.field("value")),
        ]
    )
    body = entries.list.eval(member.drop_nulls()).list.join(",")
    return pl.when(body.is_not_null() & (body != "")).then(
        pl.concat_str([pl.lit("{"), body, pl.lit("}")])
    )
