"""The S3 server's identities: one versitygw user per service user of the policy, and the lake bucket's policy.

versitygw (internal IAM in ``<home>/s3/iam``) knows the root account, which
stays inside the stack (administration only, ``credentials.json``), and one
user per service user of the policy: access key = the principal's name,
secret = its generated ``s3_secret_key``, role ``user`` (``admin`` would
bypass every policy). What each user may do is the lake bucket's policy,
rendered by :func:`datamesh.policy.storage.bucket_policy_for_grants`; versitygw
denies everything no statement allows. The bucket stays owned by root: with a
policy in place ownership grants nothing, and if the policy were ever removed
the ACL fallback would again admit only root.

:func:`apply` creates or updates the users (new secrets take effect at once),
puts the bucket policy, then removes users the policy no longer names. The
admin API (``PATCH /create-user`` ...) and ``PutBucketPolicy`` are called here
with SigV4-signed requests, so no secret appears on a command line or in a
log. ``access.json`` in the state directory records what was granted (the
service users' grants, the ``MESH_ACTOR`` mapping and the lake roots), so that
:func:`grant_lake_root` can add a lake root later without the contracts.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from datamesh.errors import PolicyError, StackError
from nativestack.credentials import PrincipalSecrets, S3Credentials, load_or_create_credentials
from nativestack.defaults import HOST
from nativestack.layout import Layout
from nativestack.processes import file_lock

if TYPE_CHECKING:  # the policy model is imported only when a policy is applied (keeps `status` light)
    from datamesh.policy import Grant, Policy

__all__ = [
    "ACCESS_FILE",
    "AdminClient",
    "StackAccess",
    "access_from_policy",
    "apply",
    "grant_lake_root",
    "put_bucket_policy",
]

ACCESS_FILE = "access.json"
USER_ROLE = "user"
_TIMEOUT_S = 30.0


# -- what the stack granted ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackAccess:
    """The grants a stack applied: service users' S3 grants, the ``MESH_ACTOR`` mapping, the lake roots."""

    platform: str
    actors: Mapping[str, str]
    grants: tuple[Grant, ...]
    lake_roots: tuple[str, ...] = ("",)

    @property
    def service_users(self) -> list[str]:
        return [g.principal for g in self.grants]

    def bucket_policy(self, bucket: str) -> dict[str, Any]:
        from datamesh.policy.storage import bucket_policy_for_grants

        return bucket_policy_for_grants(self.grants, bucket, self.lake_roots, platform=self.platform)

    def with_lake_root(self, prefix: str) -> StackAccess:
        from datamesh.policy.storage import normalise_lake_root

        root = normalise_lake_root(prefix)
        return replace(self, lake_roots=tuple(sorted({*self.lake_roots, root})))

    @staticmethod
    def path(layout: Layout) -> Path:
        return layout.home / ACCESS_FILE

    @classmethod
    def load(cls, layout: Layout) -> StackAccess | None:
        from datamesh.policy import Grant

        try:
            data = json.loads(cls.path(layout).read_text())
            return cls(
                platform=data["platform"],
                actors=dict(data["actors"]),
                grants=tuple(
                    Grant(principal=g["principal"], read=tuple(g["read"]), write=tuple(g["write"]),
                          catalog=g["catalog"], catalog_namespaces=tuple(g.get("catalog_namespaces", ())))
                    for g in data["grants"]
                ),
                lake_roots=tuple(data["lake_roots"]),
            )
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            raise StackError(
                f"{cls.path(layout)} is damaged ({type(exc).__name__}: {exc}); remove it and start the stack again "
                "(python -m nativestack up) to re-apply the policy."
            ) from None

    def save(self, layout: Layout) -> None:
        data = {
            "platform": self.platform,
            "actors": dict(sorted(self.actors.items())),
            "grants": [{"principal": g.principal, "read": list(g.read), "write": list(g.write), "catalog": g.catalog,
                        "catalog_namespaces": list(g.catalog_namespaces)} for g in self.grants],
            "lake_roots": list(self.lake_roots),
        }
        path = self.path(layout)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)


def access_from_policy(policy: Policy, lake_roots: Sequence[str] = ("",)) -> StackAccess:
    """What ``policy`` grants on the stack, under ``lake_roots`` (always including the bucket root)."""
    from datamesh.policy import PolicyRole
    from datamesh.policy.storage import normalise_lake_root, service_grants

    actors = {"platform": policy.platform.name, "analyst": policy.reader.name}
    for p in policy.principals:
        if p.role is PolicyRole.PUBLISHER:
            actors.update({f"publisher:{domain}": p.name for domain in p.domains})
    roots = tuple(sorted({"", *(normalise_lake_root(r) for r in lake_roots)}))
    return StackAccess(platform=policy.platform.name, actors=actors, grants=tuple(service_grants(policy)),
                       lake_roots=roots)


# -- versitygw's admin API and PutBucketPolicy, signed with the root credentials --------------------------------


@dataclass(frozen=True)
class _User:
    access: str
    secret: str
    role: str


class AdminClient:
    """SigV4-signed requests to versitygw's admin API and bucket API as the root account."""

    def __init__(self, endpoint: str, region: str, root: S3Credentials) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self._root = root

    def _request(self, method: str, path: str, query: Mapping[str, str] | None = None, body: bytes = b"",
                 what: str = "") -> bytes:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = self.endpoint + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = AWSRequest(method=method, url=url, data=body,
                             headers={"X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest()})
        SigV4Auth(Credentials(self._root.access_key, self._root.secret_key), "s3", self.region).add_auth(request)
        prepared = urllib.request.Request(url, data=body if body else None, method=method,
                                          headers=dict(request.headers.items()))
        try:
            with urllib.request.urlopen(prepared, timeout=_TIMEOUT_S) as response:  # noqa: S310 - our own endpoint
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise StackError(
                f"The S3 server at {self.endpoint} refused to {what}: HTTP {exc.code} {_s3_error(exc.read())}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise StackError(
                f"Cannot reach the S3 server at {self.endpoint} to {what} ({exc}). Is it running? "
                "(python -m nativestack status)"
            ) from None

    def users(self) -> dict[str, _User]:
        """Every IAM user (not root), by access key."""
        body = self._request("PATCH", "/list-users", what="list its users")
        users = {}
        for account in ElementTree.fromstring(body).iter("Accounts"):
            access = account.findtext("Access") or ""
            users[access] = _User(access, account.findtext("Secret") or "", account.findtext("Role") or "")
        return users

    def create_user(self, access: str, secret: str, role: str = USER_ROLE) -> None:
        body = (f"<Account><Access>{escape(access)}</Access><Secret>{escape(secret)}</Secret>"
                f"<Role>{escape(role)}</Role></Account>").encode()
        self._request("PATCH", "/create-user", body=body, what=f"create the user '{access}'")

    def update_user(self, access: str, secret: str, role: str = USER_ROLE) -> None:
        body = f"<MutableProps><Secret>{escape(secret)}</Secret><Role>{escape(role)}</Role></MutableProps>".encode()
        self._request("PATCH", "/update-user", {"access": access}, body, what=f"update the user '{access}'")

    def delete_user(self, access: str) -> None:
        self._request("PATCH", "/delete-user", {"access": access}, what=f"delete the user '{access}'")

    def put_bucket_policy(self, bucket: str, policy: Mapping[str, Any]) -> None:
        body = json.dumps(policy, separators=(",", ":")).encode()
        self._request("PUT", f"/{bucket}", {"policy": ""}, body, what=f"accept the policy of bucket '{bucket}'")

    def bucket_policy(self, bucket: str) -> dict[str, Any]:
        data = json.loads(self._request("GET", f"/{bucket}", {"policy": ""}, what=f"return the policy of '{bucket}'"))
        return data if isinstance(data, dict) else {}


def _s3_error(body: bytes) -> str:
    """``Code: Message`` of an S3/admin XML error body (never the request, which may hold a secret)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return body[:200].decode(errors="replace")
    return f"{root.findtext('Code') or '?'}: {root.findtext('Message') or root.findtext('Description') or ''}".strip()


# -- applying ---------------------------------------------------------------------------------------------------


def apply(
    s3_url: str,
    region: str,
    root: S3Credentials,
    bucket: str,
    access: StackAccess,
    secrets: Mapping[str, PrincipalSecrets],
) -> list[str]:
    """Make versitygw's users and the bucket policy match ``access``; returns the users removed."""
    admin = AdminClient(s3_url, region, root)
    wanted = access.service_users
    for name in wanted:
        if name == root.access_key:
            raise PolicyError(f"Service user '{name}' has the S3 root account's access key; rename it.")
        secret = secrets[name].s3_secret_key if name in secrets else None
        if not secret:
            raise StackError(f"No S3 secret key was generated for service user '{name}' (credentials.json).")
    existing = admin.users()
    for name in wanted:
        secret = secrets[name].s3_secret_key
        assert secret is not None
        user = existing.get(name)
        if user is None:
            admin.create_user(name, secret)
        elif user.secret != secret or user.role != USER_ROLE:
            admin.update_user(name, secret)
    # The policy may name only existing users, and must stop naming a user before it is removed.
    admin.put_bucket_policy(bucket, access.bucket_policy(bucket))
    removed = sorted(set(existing) - set(wanted) - {root.access_key})
    for name in removed:
        admin.delete_user(name)
    return removed


def put_bucket_policy(s3_url: str, region: str, root: S3Credentials, bucket: str, access: StackAccess) -> None:
    """Put the bucket policy of ``access`` (its users must exist)."""
    AdminClient(s3_url, region, root).put_bucket_policy(bucket, access.bucket_policy(bucket))


def grant_lake_root(home: Path | str, prefix: str) -> str:
    """Grant every service user its prefixes under the lake root ``s3://<bucket>/<prefix>/`` too.

    For lakes inside the stack's bucket other than its root (tests use ``s3://lake/pipeline-1a2b3c4d``).
    Records the root in the state directory, so a restart keeps it, and re-applies the bucket policy of the
    running stack. Returns the normalised key prefix (``'pipeline-1a2b3c4d/'``)."""
    from datamesh.policy.storage import normalise_lake_root
    from nativestack.services import StackState

    layout = Layout(Path(home).resolve())
    root_prefix = normalise_lake_root(prefix)
    with file_lock(layout.lock_file):
        state = StackState.load(layout.state_file)
        access = StackAccess.load(layout)
        if state is None or access is None:
            raise StackError(
                f"No stack with an applied policy in {layout.home}: start one first (python -m nativestack up)."
            )
        updated = access.with_lake_root(root_prefix)
        if updated != access:
            creds = load_or_create_credentials(layout, None)
            put_bucket_policy(f"http://{HOST}:{state.s3_port}", state.region, creds, state.bucket, updated)
            updated.save(layout)
    return root_prefix
