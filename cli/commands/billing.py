"""`gpuledger billing PROVIDER`: the pull providers registered in cli/providers/ (AWS: Cost
Explorer and the S3 exports, cli/providers/aws.py); `import focus|cur` files, in the formats
registered in collectors/billing/sources.py.

Pulls and imports write spool batches, then (like `import`) ingest them when no daemon owns the
warehouse, else leave them queued for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.providers import PROVIDERS
from collectors.billing import sources as billing_sources
from collectors.billing.stream import BillingBatch, TableReader
from config.settings import Config
from tables import spool


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    titles = ", ".join(dict.fromkeys(p.title for p in PROVIDERS.values()))
    p = sub.add_parser("billing", parents=[common], help=f"pull cloud billing ({titles})")
    bsub = p.add_subparsers(dest="provider", metavar="PROVIDER")
    bsub.required = True
    for provider in PROVIDERS.values():
        module = provider.load()
        a = bsub.add_parser(
            provider.name,
            parents=[common],
            help=provider.help,
            description=provider.description or None,
        )
        module.add_arguments(a)
        a.set_defaults(func=module.run)


def import_billing_files(files: list[Path], cfg: Config, fmt: str) -> list[dict[str, Any]]:
    """`gpuledger import cur|focus FILE…`: every file streamed in bounded chunks, validated, into
    ONE spool batch (a billing period's export comes as several files, and one period's rows must
    travel together to replace the earlier ones); any error writes nothing. A row per file."""
    read = billing_sources.get(fmt).read_chunks
    out: list[dict[str, Any]] = []
    first = files[0] if files else Path(fmt)
    with BillingBatch(
        cfg.spool_dir,
        "import-" + spool.safe_part(first.stem),
        metadata={"source_file": ";".join(str(p.resolve()) for p in files)},
    ) as batch:
        for path in files:
            before = batch.rows
            for chunk in read(path, tag_key=cfg.workloads.tag_key, reader=TableReader(path)):
                batch.add(chunk)
            out.append({"file": str(path), "kind": "billing_items", "rows": batch.rows - before})
    return out
