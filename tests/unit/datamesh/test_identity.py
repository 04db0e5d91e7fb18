"""Who is acting: parsing MESH_ACTOR and what each identity may change."""

from __future__ import annotations

import pytest

from datamesh.errors import OwnershipError, SettingsError
from datamesh.identity import PLATFORM, Identity, Role


@pytest.mark.parametrize(("text", "role", "domain"), [
    ("platform", Role.PLATFORM, None), ("analyst", Role.ANALYST, None), ("publisher:crm", Role.PUBLISHER, "crm"),
])
def test_parse(text: str, role: Role, domain: str | None) -> None:
    identity = Identity.parse(text)
    assert (identity.role, identity.domain) == (role, domain)
    assert str(identity) == text


@pytest.mark.parametrize("text", ["", "root", "Platform", "publisher", "publisher:", "publisher:CRM",
                                  "publisher:crm\n", "analyst:crm", "publisher:crm:x", "publisher:a__b"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises((SettingsError, Exception), match="MESH_ACTOR|domain"):
        Identity.parse(text)


def test_who_may_change_what() -> None:
    PLATFORM.authorize_publish("customers", "crm")
    Identity.parse("publisher:crm").authorize_publish("customers", "crm")
    with pytest.raises(OwnershipError, match="only products of domain 'billing'"):
        Identity.parse("publisher:billing").authorize_publish("customers", "crm")
    with pytest.raises(OwnershipError, match="may not repair"):
        Identity.parse("analyst").authorize_publish("customers", "crm", action="repair")
