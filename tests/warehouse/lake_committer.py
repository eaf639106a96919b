"""A committer process for the lake's multi-process tests (tests/warehouse/test_lake_s3.py):
commits the spool files named on its command line to the lake, a few at a time in an order of
its own, and prints one line per commit (`committed N already M rows R attempts A`).

    python -m tests.warehouse.lake_committer SPOOL WAREHOUSE CATALOG_URI ENDPOINT SEED GROUP FILE...
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from config.settings import Config, LakeConfig, WarehouseConfig
from warehouse.lake import open_lake


def main(argv: list[str]) -> int:
    spool_dir, warehouse, catalog_uri, endpoint, seed, group, *files = argv
    cfg = Config(
        warehouse=WarehouseConfig(
            path=str(Path(spool_dir).parent / "w.duckdb"), spool_dir=spool_dir
        ),
        lake=LakeConfig(
            enabled=True,
            warehouse=warehouse,
            catalog_uri=catalog_uri,
            s3_endpoint=endpoint,
            region="us-east-1",
        ),
    )
    lake = open_lake(cfg)
    order = list(files)
    random.Random(int(seed)).shuffle(order)
    size = int(group)
    for i in range(0, len(order), size):
        r = lake.commit_spool_files("gpu_samples", order[i : i + size])
        print(
            f"committed {len(r.committed)} already {len(r.already)} rows {r.rows}"
            f" attempts {r.attempts}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
