"""`gpuledger billing azure` and the daemon's Azure job: the Cost Management exports in Blob
Storage configured in [azure] (the Azure pull provider, registered in cli/providers/__init__.py;
the pull itself is collectors/billing/azure.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cli.providers import pulls
from collectors.billing.azure import AzurePullOptions, pull_azure
from collectors.billing.provider import PullReport
from config.settings import Config, ConfigError
from warehouse.billing_state import BillingState


def add_arguments(a: argparse.ArgumentParser) -> None:
    """The options of `gpuledger billing azure` (none: it takes every new or restated month)."""


def pull_options(cfg: Config) -> AzurePullOptions:
    """The [azure] settings as pull options; refuses what cannot work."""
    az = cfg.azure
    where = f"{cfg.source or 'configuration'}: [azure]"
    if not az.container:
        raise ConfigError(f"{where} container is empty: name the export's container")
    if not az.connection_string_env and not (az.storage_account or az.account_url):
        raise ConfigError(
            f"{where} storage_account is empty (needed for DefaultAzureCredential; or set "
            "connection_string_env)"
        )
    return AzurePullOptions(
        storage_account=az.storage_account,
        container=az.container,
        export_prefix=az.export_prefix,
        connection_string_env=az.connection_string_env,
        account_url=az.account_url,
        tag_key=cfg.workloads.tag_key,
    )


def _pull(cfg: Config, opts: AzurePullOptions) -> Callable[[BillingState], PullReport]:
    def pull(state: BillingState) -> PullReport:
        return pull_azure(opts, state, cfg.spool_dir, cfg.db_path.parent / "tmp")

    return pull


def run(args: argparse.Namespace, cfg: Config) -> int:
    """`gpuledger billing azure`: one pull now, ingested (or queued for the daemon)."""
    return pulls.run_command(cfg, "azure", "Azure", _pull(cfg, pull_options(cfg)), args.format)


def daemon_job(cfg: Config, *, check_every_s: float = 60.0) -> Callable[[], None]:
    """The daemon's Azure job (validates [azure] now: a bad one stops the daemon at start)."""
    pull = _pull(cfg, pull_options(cfg))
    return pulls.daemon_job(
        cfg, "azure", cfg.azure.pull_interval_h, pull, check_every_s=check_every_s
    )
