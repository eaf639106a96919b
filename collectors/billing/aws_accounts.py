"""Which AWS accounts a billing pull covers, and the session each is read with.

Credentials come only from boto3's chain (environment, shared profile, instance role); an
account with a `role_arn` is read through STS AssumeRole, whose temporary keys live in memory
only and are never logged. The account list is the configured one, or AWS Organizations'
`ListAccounts` (active accounts) when `use_organizations` is on; with neither, the caller's own
account is pulled.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import boto3

log = logging.getLogger(__name__)

SESSION_NAME = "gpuledger-billing"


@dataclass(frozen=True)
class AccountTarget:
    """One account to pull. `account_id` None: the caller's own view, no account filter."""

    account_id: str | None
    name: str = ""
    role_arn: str = ""

    @property
    def label(self) -> str:
        return self.account_id or "caller"


def base_session(profile: str = "", region: str = "us-east-1") -> boto3.Session:
    """A session on boto3's credential chain (a named profile when given)."""
    return boto3.Session(profile_name=profile or None, region_name=region)


def organization_accounts(session: boto3.Session) -> list[tuple[str, str]]:
    """(id, name) of every active account of the caller's organization."""
    client = session.client("organizations")
    out: list[tuple[str, str]] = []
    for page in client.get_paginator("list_accounts").paginate():
        for acct in page.get("Accounts", []):
            if acct.get("Status", "ACTIVE") == "ACTIVE":
                out.append((acct["Id"], acct.get("Name", "")))
    return out


def role_arn_for(account_id: str, role_name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def targets(
    session: boto3.Session,
    configured: list[tuple[str, str, str]],
    *,
    use_organizations: bool = False,
    organizations_role_name: str = "",
) -> list[AccountTarget]:
    """The accounts to pull: `configured` (id, name, role_arn) first, then the organization's
    other accounts when `use_organizations` (each assumed through `organizations_role_name`
    when set, else read from the caller's view with an account filter); with neither, the
    caller's own account."""
    out = [AccountTarget(i, n, r) for i, n, r in configured]
    if use_organizations:
        known = {t.account_id for t in out}
        for account_id, name in organization_accounts(session):
            if account_id in known:
                continue
            role = (
                role_arn_for(account_id, organizations_role_name) if organizations_role_name else ""
            )
            out.append(AccountTarget(account_id, name, role))
    if not out:
        out.append(AccountTarget(None))
    return out


def session_for(target: AccountTarget, base: boto3.Session) -> boto3.Session:
    """The session that reads `target`: an assumed role's, or `base`."""
    if not target.role_arn:
        return base
    sts = base.client("sts")
    creds = sts.assume_role(
        RoleArn=target.role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=3600
    )["Credentials"]
    log.info("assumed %s for account %s", target.role_arn, target.label)
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=base.region_name,
    )


def credential_source() -> str:
    """Which link of boto3's credential chain answers, never the secret itself.

    The instance-metadata link is not asked (it would reach the network): on EC2 with an
    instance role this says "not found in environment or profile".
    """
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    try:
        creds = boto3.Session().get_credentials()
    except Exception as exc:  # a broken profile file is worth reporting, not crashing on
        return f"error reading the credential chain: {type(exc).__name__}"
    if creds is None:
        return "not found in environment or profile"
    return f"found (method: {creds.method})"
