"""Who is acting: the platform itself, a domain's publisher, or an analyst.

Every edge (the CLI, a Dagster resource, the dbt plugin) builds its settings
once, and the settings carry the acting identity (``MESH_ACTOR``). The
library checks it wherever a product could change: a publisher may publish
only its own domain's products, an analyst may publish nothing. Credentials
bound to the identity (S3 users, Trino passwords) come with the ownership
work; until then this check is what stops a careless caller, not a hostile
one holding the root credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from datamesh.errors import OwnershipError, SettingsError
from datamesh.names import validate_name


class Role(str, Enum):
    """What an identity may do."""

    PLATFORM = "platform"  # registrar, demo, retention: may change every product
    PUBLISHER = "publisher"  # a domain team's service user: may publish its own domain's products
    ANALYST = "analyst"  # reads only


_ACTOR = re.compile(r"(platform|analyst|publisher:[a-z][a-z0-9_]{0,62})")


@dataclass(frozen=True)
class Identity:
    role: Role
    domain: str | None = None

    @classmethod
    def parse(cls, text: str) -> Identity:
        """``platform``, ``analyst`` or ``publisher:<domain>``."""
        if not isinstance(text, str) or not _ACTOR.fullmatch(text):
            raise SettingsError(
                f"Invalid MESH_ACTOR {text!r}: expected 'platform', 'analyst' or 'publisher:<domain>' "
                "(e.g. publisher:crm)."
            )
        role, _, domain = text.partition(":")
        if domain:
            validate_name(domain, kind="domain", where="MESH_ACTOR")
        return cls(Role(role), domain or None)

    def __str__(self) -> str:
        return f"{self.role.value}:{self.domain}" if self.domain else self.role.value

    def may_publish(self, domain: str) -> bool:
        return self.role is Role.PLATFORM or (self.role is Role.PUBLISHER and self.domain == domain)

    def authorize_publish(self, product: str, domain: str, *, action: str = "publish") -> None:
        """Raise OwnershipError unless this identity may change ``domain.product`` (publish, retention, repair)."""
        if self.may_publish(domain):
            return
        if self.role is Role.ANALYST:
            why = f"analysts read products; they may not {action} them"
        else:
            why = f"'{self}' may {action} only products of domain '{self.domain}'"
        raise OwnershipError(
            f"Product '{domain}.{product}': {why}. Nothing was changed. Run it as the owning domain's "
            f"publisher (MESH_ACTOR=publisher:{domain}) or the platform, or ask the '{domain}' team."
        )


PLATFORM = Identity(Role.PLATFORM)
