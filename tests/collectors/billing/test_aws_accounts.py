"""Which accounts a pull covers and the session each is read with, against moto's STS and
Organizations on 127.0.0.1."""

from collectors.billing.aws_accounts import AccountTarget, role_arn_for, session_for, targets
from tests.collectors.billing.aws_fakes import aws, moto_server  # noqa: F401  (fixtures)


def _org(aws):  # noqa: F811
    org = aws.session().client("organizations")
    org.create_organization(FeatureSet="ALL")
    ids = [
        org.create_account(Email=f"{n}@example.com", AccountName=n)["CreateAccountStatus"][
            "AccountId"
        ]
        for n in ("research", "prod")
    ]
    return org, ids


def test_without_configuration_the_caller_is_pulled(aws):  # noqa: F811
    assert targets(aws.session(), []) == [AccountTarget(None)]


def test_organizations_lists_the_active_accounts_after_the_configured_ones(aws):  # noqa: F811
    org, (research, prod) = _org(aws)
    configured = [(research, "research-configured", f"arn:aws:iam::{research}:role/custom")]
    got = targets(
        aws.session(),
        configured,
        use_organizations=True,
        organizations_role_name="gpuledger-billing-read",
    )
    by_id = {t.account_id: t for t in got}
    assert got[0].account_id == research
    assert by_id[research].role_arn.endswith(":role/custom")  # configured wins
    assert by_id[prod].role_arn == role_arn_for(prod, "gpuledger-billing-read")
    assert by_id[prod].name == "prod"
    assert "123456789012" in by_id  # the management account itself
    assert len(got) == 3


def test_an_account_is_read_through_its_assumed_role(aws):  # noqa: F811
    _, (research, _prod) = _org(aws)
    base = aws.session()
    target = AccountTarget(research, "research", role_arn_for(research, "gpuledger-billing-read"))
    session = session_for(target, base)
    assert session is not base
    assert session.client("sts").get_caller_identity()["Account"] == research
    creds = session.get_credentials()
    assert creds.token and creds.access_key != "testing"  # temporary keys, not the base ones
    # Without a role the caller's own session is used.
    assert session_for(AccountTarget(research), base) is base
