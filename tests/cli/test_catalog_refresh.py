"""`gpuledger catalog refresh aws` against botocore's Stubber: the Price List API's GetProducts
(one instance type per call, paged by NextToken) and EC2's DescribeSpotPriceHistory (paged,
several zones, older and newer prices) give the prices written into the catalog, atomically,
with as_of, source and notes; other clouds' rows and the GPU classes stay byte for byte."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from cli.commands import catalog as catalog_cmd
from cli.commands.costs import EXIT_OK
from collectors.prices.aws import product_filters
from config.catalog import load_catalog
from config.settings import Config

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HEADER = (
    "kind,name,provider,region,gpu_model,gpu_count,gpu_memory_gib,relative_throughput,high_end,"
    "on_demand_usd_per_hour,spot_usd_per_hour,purchase_usd_per_gpu,for_sale,source,as_of,notes,"
    "aliases"
)
ROWS = [
    'gpu,H100,,,H100,1,80,3.17,true,,,30000,true,"NVIDIA H100 datasheet, street price",2025-06-01,estimate,',  # noqa: E501
    "gpu,L4,,,L4,1,24,0.39,false,,,2500,true,NVIDIA L4 datasheet,2026-12-03,estimate,",
    "instance,p5.48xlarge,aws,us-east-1,H100,8,80,3.17,true,55.04,23.1583,,,old source,2025-06-05,old,",  # noqa: E501
    "instance,g6.xlarge,aws,us-east-1,L4,1,24,0.39,false,0.8048,0.3885,,,old source,2025-06-05,old,",  # noqa: E501
    "instance,p5e.48xlarge,aws,us-east-1,H100,8,80,3.17,true,,,,,old source,2025-05-01,none,",
    "instance,g6.xlarge-west,aws,us-west-2,L4,1,24,0.39,false,0.9,,,,other region,2025-06-05,x,",
    "instance,g2-standard-4,gcp,us-central1,L4,1,24,0.39,false,0.70683,0.28184,,,gcp src,2025-06-01,y,",  # noqa: E501
]


def product(itype: str, usd: str) -> str:
    """A Price List item as GetProducts returns it (a JSON string), Linux on-demand."""
    sku = f"SKU{itype.replace('.', '')}"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {"instanceType": itype, "regionCode": "us-east-1"},
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": usd},
                                "description": f"${usd} per On Demand Linux {itype} Instance Hour",
                            }
                        },
                        "sku": sku,
                    }
                }
            },
        }
    )


def spot(itype: str, zone: str, price: str, at: datetime) -> dict:
    return {
        "AvailabilityZone": zone,
        "InstanceType": itype,
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": price,
        "Timestamp": at,
    }


def stubbed(types_pages, spot_pages):
    pricing = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    ps, es = Stubber(pricing), Stubber(ec2)
    for itype, pages in types_pages:
        for i, (items, token) in enumerate(pages):
            params = {
                "ServiceCode": "AmazonEC2",
                "Filters": product_filters(itype, "us-east-1"),
                "FormatVersion": "aws_v1",
            }
            if i:
                params["NextToken"] = pages[i - 1][1]
            response = {"FormatVersion": "aws_v1", "PriceList": items}
            if token:
                response["NextToken"] = token
            ps.add_response("get_products", response, params)
    for i, (history, token) in enumerate(spot_pages):
        params = {
            "InstanceTypes": ["g6.xlarge", "p5.48xlarge", "p5e.48xlarge"],
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": NOW,
        }
        if i:
            params["NextToken"] = spot_pages[i - 1][1]
        es.add_response(
            "describe_spot_price_history", {"SpotPriceHistory": history, "NextToken": token}, params
        )
    ps.activate(), es.activate()
    return (pricing, ec2), (ps, es)


@pytest.fixture
def setup(tmp_path: Path):
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    cfg = replace(Config(), catalog=replace(Config().catalog, path=str(path)))
    return cfg, path


def args(**kw) -> argparse.Namespace:
    base = {"region": "us-east-1", "profile": "", "output": "", "dry_run": False, "format": "json"}
    return argparse.Namespace(**(base | kw))


def test_refresh_writes_todays_aws_prices_and_leaves_the_rest(setup, capsys):
    """p5.48xlarge: GetProducts pages twice (the first page empty, NextToken) and says $55.04;
    spot in three zones, us-east-1a seen twice (its newer $20.00 counts, not $30.00): median of
    20.00, 21.50, 25.00 = $21.50. g6.xlarge: $0.8048 again (unchanged), one zone at $0.35.
    p5e.48xlarge: no product (Capacity Blocks only), no spot: its row keeps what it had. The
    us-west-2 and Google Cloud rows and the classes are byte for byte what they were."""
    cfg, path = setup
    before = path.read_text().splitlines()
    api, stubs = stubbed(
        [
            ("p5.48xlarge", [([], "page-2"), ([product("p5.48xlarge", "55.0400000000")], None)]),
            ("g6.xlarge", [([product("g6.xlarge", "0.8048000000")], None)]),
            ("p5e.48xlarge", [([], None)]),
        ],
        [
            (
                [
                    spot("p5.48xlarge", "us-east-1a", "30.000000", NOW - timedelta(hours=5)),
                    spot("p5.48xlarge", "us-east-1b", "21.500000", NOW - timedelta(hours=1)),
                ],
                "spot-2",
            ),
            (
                [
                    spot("p5.48xlarge", "us-east-1a", "20.000000", NOW - timedelta(hours=2)),
                    spot("p5.48xlarge", "us-east-1c", "25.000000", NOW - timedelta(hours=3)),
                    spot("g6.xlarge", "us-east-1d", "0.350000", NOW - timedelta(hours=1)),
                ],
                "",
            ),
        ],
    )
    assert catalog_cmd._refresh(args(), cfg, api=api, now=NOW) == EXIT_OK
    for s in stubs:
        s.assert_no_pending_responses()
    cat = load_catalog(path)
    row = {r["name"]: r for r in cat.iter_rows(named=True)}
    assert row["p5.48xlarge"]["on_demand_usd_per_hour"] == 55.04
    assert row["p5.48xlarge"]["spot_usd_per_hour"] == 21.5
    assert row["p5.48xlarge"]["as_of"] == date(2026, 12, 3)
    assert "AWS Price List API" in row["p5.48xlarge"]["source"]
    assert row["p5.48xlarge"]["notes"].startswith(
        "spot = median of the latest price in 3 us-east-1"
    )
    assert (row["g6.xlarge"]["on_demand_usd_per_hour"], row["g6.xlarge"]["spot_usd_per_hour"]) == (
        0.8048,
        0.35,
    )
    assert row["p5e.48xlarge"]["as_of"] == date(2025, 5, 1)  # nothing came: untouched
    after = path.read_text().splitlines()
    for i in (0, 1, 2, 5, 6, 7):  # header, classes, p5e, us-west-2, gcp
        assert after[i] == before[i]
    changes = json.loads(capsys.readouterr().out)
    assert {(c["name"], c["column"], c["old"], c["new"]) for c in changes} == {
        ("p5.48xlarge", "spot_usd_per_hour", "23.1583", "21.5"),
        ("g6.xlarge", "spot_usd_per_hour", "0.3885", "0.35"),
    }


def test_dry_run_and_output_write_nothing_to_the_catalog(setup, tmp_path, capsys):
    """--dry-run writes nothing; --output writes the refreshed catalog there, not over the
    configured one."""
    cfg, path = setup
    before = path.read_text()
    pages = [("p5.48xlarge", [([product("p5.48xlarge", "50.0")], None)])]
    pages += [("g6.xlarge", [([], None)]), ("p5e.48xlarge", [([], None)])]
    api, _ = stubbed(pages, [([], "")])
    catalog_cmd._refresh(args(dry_run=True), cfg, api=api, now=NOW)
    assert path.read_text() == before
    api, _ = stubbed(pages, [([], "")])
    out = tmp_path / "new.csv"
    catalog_cmd._refresh(args(output=str(out)), cfg, api=api, now=NOW)
    assert path.read_text() == before
    assert (
        load_catalog(out)
        .filter(load_catalog(out)["name"] == "p5.48xlarge")["on_demand_usd_per_hour"]
        .item()
        == 50.0
    )
    assert "would change 1 price(s)" in capsys.readouterr().err


def test_an_api_error_names_the_permissions_and_changes_nothing(setup):
    cfg, path = setup
    before = path.read_text()
    pricing = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(pricing)
    stub.add_client_error("get_products", "AccessDeniedException", "not authorized")
    stub.activate()
    with pytest.raises(catalog_cmd.CommandError, match="pricing:GetProducts"):
        catalog_cmd._refresh(args(), cfg, api=(pricing, None), now=NOW)
    assert path.read_text() == before


def test_the_command_is_registered(capsys):
    from cli.main import main

    assert main(["catalog", "refresh", "--help"]) == 0
    assert "--dry-run" in capsys.readouterr().out


def test_doctor_says_how_old_each_clouds_prices_are(setup):
    """The tiny catalog on 2026-12-03 with max_age_days 180: AWS's oldest row is 2025-05-01
    (581 days: stale, refresh it), GCP's 2025-06-01 (550 days), the classes' 2025-06-01."""
    from cli.doctor import catalog_age_lines

    cfg, path = setup
    lines = catalog_age_lines(cfg, load_catalog(path), today=date(2026, 12, 3))
    assert lines["catalog aws"] == (
        "4 rows, as of 2025-05-01 to 2025-06-05, oldest 581 days old (stale: older than 180"
        " days; gpuledger catalog refresh aws)"
    )
    assert lines["catalog gcp"].endswith("oldest 550 days old (stale: older than 180 days)")
    assert list(lines) == ["catalog aws", "catalog gcp", "catalog gpu classes"]
    fresh = catalog_age_lines(
        replace(cfg, catalog=replace(cfg.catalog, max_age_days=3650)), load_catalog(path)
    )
    assert not any("stale" in v for v in fresh.values())
