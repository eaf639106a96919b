"""Billing pull providers, by name: what `gpuledger billing NAME` runs and the daemon pulls.

Each provider is one line at the end of this file: its name (the `billing` subcommand; its
daemon job is `<name>-billing`), the module of its command (imported when the command line is
built, or when the daemon pulls), the configuration section whose `enabled` key turns the
daemon's pulls on, how often the daemon asks whether a pull is due, and its help.
docs/architecture.md says how to add a provider. (Billing file formats, `gpuledger import
NAME`, are registered in collectors/billing/sources.py.)

A provider's module provides:

- `add_arguments(parser)`: the options of `gpuledger billing NAME`;
- `run(args, cfg) -> int`: the command (exit status 0, 1 or 2);
- `daemon_job(cfg, *, check_every_s) -> Callable[[], None]`: the daemon's tick, which starts a
  pull when one is due; it validates the settings when built (a conflict stops the daemon).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import Config


@dataclass(frozen=True)
class PullProvider:
    """One billing pull provider: its name, its command's module, its configuration section,
    its daemon period, its help."""

    name: str
    module: str
    section: str
    title: str  # how `gpuledger billing --help` names the cloud
    help: str
    description: str = ""
    check_every_s: float = 60.0

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def enabled(self, cfg: Config) -> bool:
        """Whether the daemon pulls it (`[section] enabled`)."""
        return bool(getattr(cfg, self.section).enabled)

    def daemon_job(self, cfg: Config) -> Callable[[], Any]:
        """The daemon's tick, run every `check_every_s`."""
        return self.load().daemon_job(cfg, check_every_s=self.check_every_s)


PROVIDERS: dict[str, PullProvider] = {}


def register(provider: PullProvider) -> PullProvider:
    """Add a provider (its name must be new); returns it."""
    if provider.name in PROVIDERS:
        raise ValueError(f"billing provider name {provider.name!r} is taken")
    PROVIDERS[provider.name] = provider
    return provider


# One line per provider -------------------------------------------------------------------------
register(
    PullProvider(
        "aws",
        "cli.providers.aws",
        section="aws",
        title="AWS",
        help="pull Cost Explorer and the S3 CUR 2.0 / FOCUS exports configured in [aws]",
        description="Pull AWS billing into the warehouse. Cost Explorer asks for the trailing "
        "window (plus a weekly month-to-date rebuild) unless --since is given; every request "
        "costs USD 0.01 and the run prints how many it made.",
    )
)
register(
    PullProvider(
        "azure",
        "cli.providers.azure",
        section="azure",
        title="Azure",
        help="pull the Cost Management exports in Blob Storage configured in [azure]",
        description="Pull Azure billing into the warehouse: every new or restated month of the "
        "Cost Management export under [azure] export_prefix (FOCUS or actual/amortized cost "
        "details), taken by ETag.",
    )
)
register(
    PullProvider(
        "gcp",
        "cli.providers.gcp",
        section="gcp",
        title="Google Cloud",
        help="pull the billing files in Cloud Storage or the BigQuery export configured in [gcp]",
        description="Pull Google Cloud billing into the warehouse: every new or restated month "
        "of the billing files under [gcp] export_prefix, or the trailing window of the BigQuery "
        "detailed usage cost export.",
    )
)
