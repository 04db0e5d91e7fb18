"""The access policy derived from contracts + governance file: who may write, read and see PII of what."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamesh.contracts import Classification, ContractRegistry
from datamesh.errors import OwnershipError, PolicyError
from datamesh.identity import Identity
from datamesh.paths import CONTRACTS_DIR
from datamesh.policy import GOVERNANCE_FILE, PolicyRole, load_policy

CONTRACTS = ContractRegistry.from_dir(CONTRACTS_DIR)


@pytest.fixture(scope="module")
def policy():  # noqa: ANN201
    return load_policy(CONTRACTS, GOVERNANCE_FILE)


def _governance(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "governance.yaml"
    path.write_text(text)
    return path


BASE = GOVERNANCE_FILE.read_text()


def test_every_domain_has_exactly_its_owning_teams_publisher(policy) -> None:  # noqa: ANN001
    for contract in CONTRACTS:
        publisher = policy.publisher_of(contract.domain)
        assert publisher.team == contract.owner.team
        assert policy.principal_for(Identity.parse(f"publisher:{contract.domain}")) == publisher
    assert policy.principal_for(Identity.parse("platform")).role is PolicyRole.PLATFORM
    assert policy.principal_for(Identity.parse("analyst")).role is PolicyRole.READER


def test_publishers_write_only_their_own_domains_and_read_only_their_inputs(policy) -> None:  # noqa: ANN001
    for p in policy.names(role=PolicyRole.PUBLISHER):
        grant = policy.grant(p)
        principal = policy.principal(p)
        for prefix in grant.write:
            assert prefix.startswith(tuple(f"products/{d}/" for d in principal.domains)) or prefix.startswith(
                "models/"), prefix
        allowed_reads = set(grant.write) | {
            f"products/{d}/{i}/" for a in policy.products if a.domain in principal.domains for d, i in a.inputs}
        assert set(grant.read) <= allowed_reads
        assert "" not in grant.read and "products/" not in grant.read
    crm = policy.grant("svc_crm")
    assert crm.write == ("products/crm/",) and crm.catalog_namespaces == ("crm",)
    retention = policy.grant("svc_retention")
    assert "products/crm/customers/" in retention.read and "products/crm/customers/" not in retention.write
    assert any(w.startswith("models/") for w in retention.write)


def test_readers_write_nothing_and_cannot_read_pii_files(policy) -> None:  # noqa: ANN001
    for name in (policy.reader.name, policy.engine.name, *(p.name for p in policy.people())):
        assert policy.grant(name).write == ()
    reader = policy.grant(policy.reader)
    pii_products = [a for a in policy.products if a.pii_columns]
    assert pii_products, "the demo contracts classify at least one column as pii"
    for a in pii_products:
        assert a.prefix not in reader.read
    assert policy.grant("alice").read == ()  # people have no S3 credentials at all
    assert policy.grant("ops_admin").write == ()


def test_pii_unmasked_only_for_pii_groups_owners_and_the_platform(policy) -> None:  # noqa: ANN001
    customers = next(a for a in policy.products if a.pii_columns)
    assert not policy.sees_pii("alice", customers)
    assert not policy.sees_pii("analyst", customers)
    assert policy.sees_pii("dana", customers)  # privacy_office: pii: true
    assert policy.sees_pii(customers.publisher, customers)
    other = next(p for p in policy.names(role=PolicyRole.PUBLISHER) if p != customers.publisher)
    assert not policy.sees_pii(other, customers)


def test_unknown_team_is_refused_naming_the_contract(tmp_path: Path) -> None:
    text = BASE.replace("  crm-platform:\n    service_user: svc_crm\n    members: [carol]\n", "")
    with pytest.raises(PolicyError, match=r"customers.yaml.*crm-platform.*teams"):
        load_policy(CONTRACTS, _governance(tmp_path, text))


def test_a_domain_with_two_owning_teams_is_refused() -> None:
    contracts = list(CONTRACTS)
    stray = contracts[0].model_copy(update={"id": "stray", "owner": contracts[-1].owner})
    if stray.owner.team == contracts[0].owner.team:
        pytest.skip("first and last contracts share a team")
    with pytest.raises(PolicyError, match="one owning team"):
        load_policy([*contracts, stray], GOVERNANCE_FILE)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("service_user: svc_crm", "service_user: analyst", "one name, one identity"),
    ("service_user: svc_crm", "service_user: Svc-CRM", "lowercase identifier"),
    ("members: [alice, bob]", "members: [alice, bob, mesh_platform]", "one name, one identity"),
    ("version: 1", "version: 2", "version"),
    ("    pii: true", "    pii: true\n    superuser: true", "superuser"),
])
def test_bad_governance_files_are_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in BASE
    with pytest.raises(PolicyError, match=message):
        load_policy(CONTRACTS, _governance(tmp_path, BASE.replace(old, new, 1)))


def test_missing_or_invalid_yaml_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(CONTRACTS, tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(CONTRACTS, _governance(tmp_path, "teams: [unclosed"))


def test_unknown_domain_has_no_publisher(policy) -> None:  # noqa: ANN001
    with pytest.raises(OwnershipError, match="no publisher"):
        policy.principal_for(Identity.parse("publisher:nosuchdomain"))


# -- the generated artefacts ------------------------------------------------------------------------------


def test_committed_artefacts_match_the_contracts_and_governance_file(policy) -> None:  # noqa: ANN001
    from datamesh.policy import GENERATED_DIR
    from datamesh.policy.render import drift

    assert drift(policy, GENERATED_DIR) == [], "run `mesh policy render` and commit governance/generated/"


def test_drift_is_found_when_a_contract_changes(tmp_path: Path) -> None:
    """A column newly classified pii must change the rendered rules: the drift test can fail."""
    from datamesh.policy import GENERATED_DIR
    from datamesh.policy.render import drift, write_all

    out = tmp_path / "generated"
    write_all(load_policy(CONTRACTS, GOVERNANCE_FILE), out)
    assert drift(load_policy(CONTRACTS, GOVERNANCE_FILE), out) == []
    target = next(c for c in CONTRACTS if c.domain == "billing")
    contracts = [
        c.model_copy(update={"columns": (*c.columns[:-1], c.columns[-1].model_copy(update={"classification": Classification.PII}))})
        if c.id == target.id else c for c in CONTRACTS
    ]
    problems = drift(load_policy(contracts, GOVERNANCE_FILE), out)
    assert any(p.startswith("trino-rules.json") for p in problems), problems
    assert any(p.startswith("s3-") for p in problems), problems  # the query user may no longer read it on S3
    (out / "stray.txt").write_text("hand-made")
    assert any("stray.txt" in p for p in drift(load_policy(CONTRACTS, GOVERNANCE_FILE), out))
    assert GENERATED_DIR.is_dir()


def test_policy_render_check_exit_codes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from meshcli import app

    runner = CliRunner()
    out = tmp_path / "gen"
    assert runner.invoke(app, ["policy", "render", "--check", "--out", str(out)]).exit_code == 1
    assert runner.invoke(app, ["policy", "render", "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["policy", "render", "--check", "--out", str(out)])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["policy", "show"])
    assert shown.exit_code == 0 and "svc_crm" in shown.output and "Traceback" not in shown.output
