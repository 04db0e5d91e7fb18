"""One access policy, derived from the contracts and the governance file.

The contracts say which team owns each product (``owner.team``), what each
product reads (``lineage.inputs``) and which columns are personal data
(``classification: pii``); ``governance/governance.yaml`` says which service
user publishes for each team and who is in which group. :func:`load_policy`
joins the two into a :class:`Policy`; every enforcement point is rendered
from it (``datamesh.policy.render``): Trino's access rules and groups, the S3
policies, the catalog's PostgreSQL roles. Nothing is granted that is not
derived here, and everything not granted is denied.

Roles:

* ``platform`` -- the registrar (demo, retention, repair): writes every
  product; the only identity that may change anything through Trino.
  Platform admins (people) act as it in Trino.
* ``publisher`` -- a team's service user: writes its own domains' products
  (``products/<domain>/``) and the models trained on them
  (``models/<product>/``), reads its products' declared inputs whole (their
  files, PII included: declaring an input is asking for it).
* ``reader`` -- the query service user (``mesh query``, DuckDB sessions,
  dashboards) and every person: reads every active product; PII columns are
  masked in Trino unless the person's group has ``pii: true``. On S3 the query
  service user cannot read products with PII columns at all (a file cannot be
  masked): those are read through Trino.
* ``engine`` -- Trino's own identity towards S3 and the catalog: reads every
  product, writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datamesh.errors import OwnershipError, PolicyError
from datamesh.identity import Identity, Role

__all__ = [
    "GOVERNANCE_FILE",
    "GENERATED_DIR",
    "Grant",
    "Policy",
    "PolicyRole",
    "Principal",
    "ProductAccess",
    "load_policy",
]

GOVERNANCE_DIR = Path(__file__).resolve().parents[2] / "governance"
GOVERNANCE_FILE = GOVERNANCE_DIR / "governance.yaml"
GENERATED_DIR = GOVERNANCE_DIR / "generated"

#: One name is the Trino user, the S3 access key and the PostgreSQL role.
_PRINCIPAL = re.compile(r"[a-z][a-z0-9_]{2,62}")


class PolicyRole(str, Enum):
    PLATFORM = "platform"
    PUBLISHER = "publisher"
    READER = "reader"
    ENGINE = "engine"


class Kind(str, Enum):
    SERVICE = "service"  # gets credentials for S3, the catalog and Trino
    PERSON = "person"  # a Trino login only


# -- the governance file ------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Platform(_Model):
    service_user: str
    admins: tuple[str, ...] = ()


class _Team(_Model):
    service_user: str
    members: tuple[str, ...] = ()


class _Readers(_Model):
    service_user: str
    engine_user: str


class _Group(_Model):
    members: tuple[str, ...] = ()
    pii: bool = False


class _Governance(_Model):
    version: int = Field(ge=1, le=1)
    platform: _Platform
    teams: dict[str, _Team]
    readers: _Readers
    groups: dict[str, _Group] = Field(default_factory=dict)


# -- the derived policy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """One identity: a service user (S3 + catalog + Trino credentials) or a person (Trino only)."""

    name: str
    role: PolicyRole
    kind: Kind
    team: str | None = None
    domains: tuple[str, ...] = ()  # publishers: the domains whose products they write
    groups: tuple[str, ...] = ()
    pii: bool = False  # reads PII columns unmasked (Trino)

    @property
    def is_service(self) -> bool:
        return self.kind is Kind.SERVICE


@dataclass(frozen=True)
class ProductAccess:
    """One product as the policy sees it."""

    domain: str
    product: str
    status: str
    team: str
    publisher: str  # the owning team's service user
    inputs: tuple[tuple[str, str], ...]  # (domain, product) of each declared input
    pii_columns: tuple[tuple[str, str], ...]  # (column, type) classified pii
    has_model: bool  # an ml block: models/<product>/ belongs to the domain too
    source: str = ""  # the contract file

    @property
    def fqn(self) -> str:
        return f"{self.domain}.{self.product}"

    @property
    def prefix(self) -> str:
        return f"products/{self.domain}/{self.product}/"

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class Grant:
    """What one service user may do with lake objects, as lake-relative key prefixes ('' = the whole lake)."""

    principal: str
    read: tuple[str, ...]
    write: tuple[str, ...]
    catalog: str  # "all", "namespaces:<d>,<d>" or "read"
    catalog_namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    principals: tuple[Principal, ...]
    products: tuple[ProductAccess, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pii_groups: tuple[str, ...] = ()
    source: str = ""

    # -- look-ups --------------------------------------------------------------------------------------

    def principal(self, name: str) -> Principal:
        for p in self.principals:
            if p.name == name:
                return p
        raise PolicyError(f"No principal '{name}' in the policy; known: {', '.join(self.names())}.")

    def names(self, *, role: PolicyRole | None = None, services_only: bool = False) -> list[str]:
        return [p.name for p in self.principals
                if (role is None or p.role is role) and (not services_only or p.is_service)]

    def service_users(self) -> list[Principal]:
        return [p for p in self.principals if p.is_service]

    def people(self) -> list[Principal]:
        return [p for p in self.principals if not p.is_service]

    @property
    def platform(self) -> Principal:
        return next(p for p in self.principals if p.role is PolicyRole.PLATFORM and p.is_service)

    @property
    def reader(self) -> Principal:
        return next(p for p in self.principals if p.role is PolicyRole.READER and p.is_service)

    @property
    def engine(self) -> Principal:
        return next(p for p in self.principals if p.role is PolicyRole.ENGINE)

    def publisher_of(self, domain: str) -> Principal:
        for p in self.principals:
            if p.role is PolicyRole.PUBLISHER and domain in p.domains:
                return p
        raise OwnershipError(
            f"Domain '{domain}' has no publisher in the policy: no contract of that domain names a team in "
            f"{GOVERNANCE_FILE.name}. Add the owning team there (teams: <team>: service_user: ...)."
        )

    def principal_for(self, identity: Identity) -> Principal:
        """The service user that ``MESH_ACTOR`` acts as: platform, the domain's publisher, or the query user."""
        if identity.role is Role.PLATFORM:
            return self.platform
        if identity.role is Role.ANALYST:
            return self.reader
        assert identity.domain is not None
        return self.publisher_of(identity.domain)

    def product(self, domain: str, product: str) -> ProductAccess | None:
        return next((a for a in self.products if a.domain == domain and a.product == product), None)

    # -- grants ----------------------------------------------------------------------------------------

    def grant(self, principal: Principal | str) -> Grant:
        """The lake prefixes ``principal`` may read and write, and its catalog privilege."""
        p = self.principal(principal) if isinstance(principal, str) else principal
        if not p.is_service:  # people log in to Trino only
            return Grant(p.name, read=(), write=(), catalog="none")
        if p.role is PolicyRole.PLATFORM:
            return Grant(p.name, read=("",), write=("",), catalog="all")
        if p.role is PolicyRole.ENGINE:
            return Grant(p.name, read=("products/",), write=(), catalog="read")
        if p.role is PolicyRole.PUBLISHER:
            write = [f"products/{d}/" for d in p.domains]
            write += [f"models/{a.product}/" for a in self.products if a.domain in p.domains and a.has_model]
            inputs = {f"products/{d}/{i}/" for a in self.products if a.domain in p.domains for d, i in a.inputs}
            read = write + sorted(i for i in inputs if not any(i.startswith(w) for w in write))
            return Grant(p.name, read=tuple(read), write=tuple(write), catalog="namespaces",
                         catalog_namespaces=p.domains)
        # The query service user: every active product without PII columns, and the model cards.
        readable = tuple(a.prefix for a in self.products if a.active and not a.pii_columns)
        return Grant(p.name, read=(*readable, "models/"), write=(), catalog="read")

    def trino_readable(self, principal: Principal | str) -> list[ProductAccess]:
        """The products ``principal`` may SELECT in Trino."""
        p = self.principal(principal) if isinstance(principal, str) else principal
        if p.role in (PolicyRole.PLATFORM, PolicyRole.ENGINE):
            return list(self.products)
        if p.role is PolicyRole.PUBLISHER:
            own = {a.fqn for a in self.products if a.domain in p.domains}
            inputs = {f"{d}.{i}" for a in self.products if a.domain in p.domains for d, i in a.inputs}
            return [a for a in self.products if a.fqn in own | inputs]
        return [a for a in self.products if a.active]

    def sees_pii(self, principal: Principal | str, product: ProductAccess) -> bool:
        """Whether ``principal`` reads ``product``'s PII columns unmasked in Trino."""
        p = self.principal(principal) if isinstance(principal, str) else principal
        if p.role in (PolicyRole.PLATFORM, PolicyRole.ENGINE):
            return True
        if p.role is PolicyRole.PUBLISHER:  # its own domains, and what it declared it reads (it gets those files)
            declared = {i for a in self.products if a.domain in p.domains for i in a.inputs}
            return product.domain in p.domains or (product.domain, product.product) in declared
        return p.pii


# -- loading -------------------------------------------------------------------------------------------------


def load_policy(contracts: Iterable[Any] | None = None, governance: Path | str | None = None) -> Policy:
    """Derive the policy from ``contracts`` (default: the settings' contracts) and the governance file."""
    path = Path(governance) if governance is not None else GOVERNANCE_FILE
    if contracts is None:
        from datamesh.contracts import ContractRegistry
        from datamesh.settings import get_settings

        contracts = ContractRegistry.from_dir(get_settings().contracts_dir)
    gov = _read_governance(path)
    contracts = sorted(contracts, key=lambda c: (c.domain, c.id))
    by_id = {c.id: c for c in contracts}

    domain_team: dict[str, tuple[str, str]] = {}
    for c in contracts:
        where = str(c.source_path or c.id)
        if c.owner.team not in gov.teams:
            raise PolicyError(
                f"{where}: product '{c.domain}.{c.id}' is owned by team '{c.owner.team}', which {path} does not "
                f"list under 'teams'. Add it with its service user (teams: {c.owner.team}: service_user: svc_...)."
            )
        seen = domain_team.setdefault(c.domain, (c.owner.team, where))
        if seen[0] != c.owner.team:
            raise PolicyError(
                f"{where}: domain '{c.domain}' is owned by team '{seen[0]}' ({seen[1]}), but this contract names "
                f"team '{c.owner.team}'. A domain has one owning team: fix owner.team or move the product."
            )

    products = []
    for c in contracts:
        inputs = tuple(sorted((by_id[i].domain, i) for i in c.lineage.inputs if i in by_id))
        pii = tuple((col.name, col.type.value) for col in c.columns if col.classification.value == "pii")
        products.append(ProductAccess(
            domain=c.domain, product=c.id, status=c.status.value, team=c.owner.team,
            publisher=gov.teams[c.owner.team].service_user, inputs=inputs, pii_columns=pii,
            has_model=c.ml is not None, source=str(c.source_path or ""),
        ))

    people_groups: dict[str, list[str]] = {}
    for group, spec in sorted(gov.groups.items()):
        for member in spec.members:
            people_groups.setdefault(member, []).append(group)
    team_members = {m: t for t, spec in gov.teams.items() for m in spec.members}
    for m in list(team_members) + list(gov.platform.admins):
        people_groups.setdefault(m, [])
    pii_groups = tuple(sorted(g for g, spec in gov.groups.items() if spec.pii))

    principals = [
        Principal(gov.platform.service_user, PolicyRole.PLATFORM, Kind.SERVICE),
        *(Principal(spec.service_user, PolicyRole.PUBLISHER, Kind.SERVICE, team=team,
                    domains=tuple(sorted(d for d, (t, _) in domain_team.items() if t == team)))
          for team, spec in sorted(gov.teams.items())),
        Principal(gov.readers.service_user, PolicyRole.READER, Kind.SERVICE),
        Principal(gov.readers.engine_user, PolicyRole.ENGINE, Kind.SERVICE),
    ]
    for person, groups in sorted(people_groups.items()):
        role = PolicyRole.PLATFORM if person in gov.platform.admins else PolicyRole.READER
        principals.append(Principal(person, role, Kind.PERSON, team=team_members.get(person),
                                    groups=tuple(groups), pii=any(g in pii_groups for g in groups)))
    _check_names(principals, gov, path)
    groups = {g: tuple(sorted(spec.members)) for g, spec in sorted(gov.groups.items())}
    return Policy(principals=tuple(principals), products=tuple(products), groups=groups, pii_groups=pii_groups,
                  source=str(path))


def _read_governance(path: Path) -> _Governance:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"Governance file {path} does not exist; it lists the teams' service users and the "
                          "groups of people (see governance/governance.yaml in the repository).") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}).") from None
    try:
        return _Governance.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{path}: {problems}.") from None


def _check_names(principals: list[Principal], gov: _Governance, path: Path) -> None:
    seen: dict[str, str] = {}
    for p in principals:
        if not _PRINCIPAL.fullmatch(p.name):
            raise PolicyError(
                f"{path}: name {p.name!r} is not a lowercase identifier of 3-63 letters, digits or '_' starting "
                "with a letter (it is the Trino user, the S3 access key and the PostgreSQL role at once)."
            )
        what = f"{p.role.value} {p.kind.value}"
        if p.name in seen:
            raise PolicyError(f"{path}: '{p.name}' is both a {seen[p.name]} and a {what}; one name, one identity.")
        seen[p.name] = what
    for group in gov.groups:
        if not _PRINCIPAL.fullmatch(group):
            raise PolicyError(f"{path}: group name {group!r} is not a lowercase identifier (letters, digits, '_').")
