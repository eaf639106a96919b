"""`gpuledger catalog refresh aws`: the AWS instance types of the price catalog get today's
on-demand price (Price List API) and spot price (EC2 spot price history, the median across the
region's zones), written atomically into the catalog (or the file `--output` names) with their
`as_of`, `source` and `notes`, and a summary of every cell that changed.

Prices of other clouds, GPU classes and rows of other regions are left as they are.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cli.commands.costs import EXIT_FAIL, EXIT_OK, CommandError, run
from cli.output import emit
from config.catalog import (
    CatalogError,
    PriceUpdate,
    instance_types,
    load_catalog,
    refreshed_catalog_text,
)
from config.settings import Config
from tables.files import atomic_write

SOURCE = (
    "AWS Price List API (GetProducts: {region}, Linux, shared tenancy, on-demand) and EC2"
    " DescribeSpotPriceHistory (Linux/UNIX, median of each zone's latest price), read by"
    " gpuledger catalog refresh aws"
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("catalog", parents=[common], help="refresh the price catalog")
    csub = p.add_subparsers(dest="catalog_command", metavar="COMMAND")
    csub.required = True
    r = csub.add_parser(
        "refresh",
        parents=[common],
        help="refresh a cloud's prices in the catalog (aws)",
        description="Read today's AWS on-demand and spot prices of the catalog's AWS instance"
        " types and write them into the catalog atomically, with as_of and source.",
    )
    r.add_argument("cloud", choices=("aws",), help="the cloud whose prices to refresh")
    r.add_argument("--region", default="us-east-1", help="the catalog rows' region (us-east-1)")
    r.add_argument("--profile", default="", help="AWS shared-config profile (boto3's chain)")
    r.add_argument("--output", default="", help="write here instead of the configured catalog")
    r.add_argument("--dry-run", action="store_true", help="show the changes, write nothing")
    r.set_defaults(func=cmd_refresh)


def cmd_refresh(args: argparse.Namespace, cfg: Config) -> int:
    return run("catalog refresh", _refresh, args, cfg)


def _refresh(
    args: argparse.Namespace, cfg: Config, *, api=None, now: datetime | None = None
) -> int:
    """`api`: (pricing client, EC2 client) for tests; else boto3's, on its credential chain."""
    now = now or datetime.now(UTC)
    path = cfg.catalog_path
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        raise CommandError(str(exc)) from None
    rows = instance_types(catalog).filter(
        (pl.col("provider") == "aws") & (pl.col("region") == args.region)
    )
    names = rows["name"].to_list()
    if not names:
        raise CommandError(f"{path} has no AWS instance types in {args.region}")
    updates = _fetch(names, args, now, api)
    text, changes = refreshed_catalog_text(
        path.read_text(encoding="utf-8"),
        updates,
        provider="aws",
        region=args.region,
        as_of=now.date(),
        source=SOURCE.format(region=args.region),
    )
    out = Path(args.output) if args.output else path
    if not args.dry_run:
        atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        load_catalog(out)  # what was written reads back
    _summary(changes, updates, out, args)
    return EXIT_OK if any(u.on_demand_usd_per_hour for u in updates) else EXIT_FAIL


def _fetch(names: list[str], args: argparse.Namespace, now: datetime, api) -> list[PriceUpdate]:
    """Today's prices of `names` from the AWS APIs, as catalog updates."""
    from botocore.exceptions import BotoCoreError, ClientError

    from collectors.prices.aws import aws_prices, clients

    try:
        pricing, ec2 = api or clients(args.region, args.profile)
        prices = aws_prices(pricing, ec2, names, args.region, now)
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(
            f"could not read AWS prices ({exc}); credentials come from boto3's chain and need"
            " pricing:GetProducts and ec2:DescribeSpotPriceHistory (docs/catalog.md)",
            EXIT_FAIL,
        ) from None
    return [
        PriceUpdate(
            p.instance_type,
            p.on_demand_usd_per_hour,
            p.spot_usd_per_hour,
            _notes(p.spot_usd_per_hour, p.spot_zones, args.region),
        )
        for p in prices
    ]


def _notes(spot: float | None, zones: int, region: str) -> str:
    if spot is None:
        return f"no spot price offered in {region} when refreshed"
    return f"spot = median of the latest price in {zones} {region} zone(s); spot moves daily"


def _summary(changes: list[dict], updates: list[PriceUpdate], out: Path, args) -> None:
    missing = [u.name for u in updates if u.on_demand_usd_per_hour is None]
    verb = "would change" if args.dry_run else "changed"
    prices = [c for c in changes if c["column"].endswith("_usd_per_hour")]
    print(
        f"gpuledger catalog refresh aws: {verb} {len(prices)} price(s) of "
        f"{len({c['name'] for c in changes})} instance type(s) in {out}",
        file=sys.stderr,
    )
    if missing:
        print(
            "  no on-demand price in the Price List for: "
            + ", ".join(missing)
            + " (their row keeps what it had)",
            file=sys.stderr,
        )
    emit(prices, args.format)
