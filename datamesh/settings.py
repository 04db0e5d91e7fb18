"""All platform settings in one typed object.

Environments differ by settings only: ``MESH_LAKE_URL=s3://lake/`` plus the
``MESH_S3_*`` values switch the whole platform (CLI, dbt, Dagster) to object
storage. Values come from the environment (prefix ``MESH_``) or a ``.env``
file in the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from datamesh.errors import PlatformError, SettingsError
from datamesh.identity import Identity
from datamesh.paths import CONTRACTS_DIR, DBT_PROJECT_DIR, DEFAULT_LAKE_DIR


@dataclass(frozen=True)
class LakeLocation:
    """Where the lake lives, parsed once: a local folder or ``s3://bucket/prefix``."""

    scheme: Literal["file", "s3"]
    #: Local: the absolute folder. S3: ``bucket`` or ``bucket/prefix`` (no slashes around).
    root: str
    bucket: str = ""

    @classmethod
    def parse(cls, url: str | Path) -> LakeLocation:
        text = str(url).strip()
        if not text:
            raise SettingsError("MESH_LAKE_URL is empty: give a local folder or s3://bucket/prefix.")
        if "\n" in text or "\r" in text or "\x00" in text:
            raise SettingsError(f"MESH_LAKE_URL {text!r} contains a control character.")
        if text.startswith("s3://"):
            root = text[len("s3://"):].strip("/")
            if not root:
                raise SettingsError(f"Lake URL {text!r} names no bucket; expected s3://bucket[/prefix].")
            parts = root.split("/")
            if any(p in ("", ".", "..") for p in parts):
                raise SettingsError(f"Lake URL {text!r}: empty, '.' or '..' path segments are not allowed.")
            return cls("s3", root, parts[0])
        if "://" in text and not text.startswith("file://"):
            raise SettingsError(f"Unsupported lake URL {text!r}: expected a local path or s3://bucket/prefix.")
        path = Path(text.removeprefix("file://")).expanduser().resolve()
        return cls("file", str(path))

    @property
    def is_s3(self) -> bool:
        return self.scheme == "s3"

    @property
    def url(self) -> str:
        return f"s3://{self.root}/" if self.is_s3 else self.root

    def __str__(self) -> str:
        return self.url


class Settings(BaseSettings):
    """Platform settings; read from ``MESH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MESH_", env_file=".env", extra="ignore")

    lake_url: str = Field(
        default=str(DEFAULT_LAKE_DIR),
        description="Where products live: a local folder or s3://bucket/prefix.",
    )
    contracts_dir: Path = Field(default=CONTRACTS_DIR, description="Folder of product contracts.")
    dbt_project_dir: Path = Field(default=DBT_PROJECT_DIR, description="The dbt project.")

    s3_endpoint_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:9000")
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    iceberg_catalog_uri: SecretStr | None = Field(
        default=None,
        description="The Iceberg SQL catalog (SQLAlchemy URL, e.g. postgresql+psycopg2://...); "
                    "unset = a SQLite file inside a local lake.",
    )

    trino_host: str | None = Field(default=None, description="Trino coordinator host; unset = no Trino.")
    trino_port: int = 8080
    trino_user: str = "mesh"
    trino_password: SecretStr | None = Field(
        default=None, description="The Trino user's password (PASSWORD authentication; needs https)."
    )
    trino_scheme: Literal["http", "https"] = Field(
        default="http", description="https on every authenticated Trino (the stack's and compose's)."
    )
    trino_ca_file: Path | None = Field(
        default=None, description="PEM file of the CA that signed Trino's certificate (the stack's own CA)."
    )
    trino_catalog: str = "lake"

    credentials_file: Path | None = Field(
        default=None,
        description="A private (0600) JSON file of every identity's credentials (`mesh stack up` writes one): the "
                    "S3 keys, catalog URI and Trino login of the acting MESH_ACTOR are taken from it.",
    )

    duckdb_memory_limit: str = "3GB"
    duckdb_threads: int | None = None

    actor: str = Field(
        default="platform",
        description="Who is acting: 'platform', 'analyst' or 'publisher:<domain>' (a domain's publisher).",
    )
    automation: bool = Field(
        default=False,
        description="Start schedules and sensors ON (operators: docker-compose sets it); off on a developer machine.",
    )
    run_id: str | None = Field(
        default=None, description="The orchestrator's run id to record in manifests (set by Dagster, not by hand)."
    )

    @field_validator("lake_url", "actor")
    @classmethod
    def _parses(cls, v: str, info: ValidationInfo) -> str:
        """The lake URL and the actor must parse (into LakeLocation, Identity) here, at the edge."""
        try:
            (LakeLocation.parse if info.field_name == "lake_url" else Identity.parse)(v)
        except PlatformError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _credentials_of_the_actor(self) -> Settings:
        """With a credentials file, the acting identity's credentials are the only ones: its entry replaces
        every credential setting (one set explicitly for another identity would let MESH_ACTOR lie)."""
        if self.credentials_file is not None:
            entry = identity_credentials(self.credentials_file, self.actor)
            for name in CREDENTIAL_FIELDS:
                object.__setattr__(self, name, entry.get(name, type(self).model_fields[name].default))
        return self

    def as_actor(self, actor: str) -> Settings:
        """These settings acting as ``actor``, with its credentials from the credentials file.

        Without a credentials file only the actor changes (the platform's own checks still apply, but the
        storage layer cannot tell the identities apart)."""
        Identity.parse(actor)
        if actor == self.actor:
            return self
        update: dict[str, object] = {"actor": actor}
        if self.credentials_file is not None:  # nothing of the previous identity carries over
            update.update({name: type(self).model_fields[name].default for name in CREDENTIAL_FIELDS})
            update.update(identity_credentials(self.credentials_file, actor))
        elif self.s3_secret_access_key is not None or self.trino_password is not None:
            raise SettingsError(
                f"Cannot act as {actor!r}: the S3 or Trino credentials in these settings belong to {self.actor!r}, "
                f"and there is no MESH_CREDENTIALS_FILE to take {actor!r}'s from. Set MESH_ACTOR={actor} with "
                "that identity's own credentials, or point MESH_CREDENTIALS_FILE at the stack's identities file."
            )
        return self.model_copy(update=update)

    @property
    def lake(self) -> LakeLocation:
        return LakeLocation.parse(self.lake_url)

    @property
    def identity(self) -> Identity:
        return Identity.parse(self.actor)

    @property
    def is_s3(self) -> bool:
        return self.lake.is_s3


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None


def build_settings(**overrides: object) -> Settings:
    """Settings from the environment with explicit overrides (the edges use this); clear errors."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None


def describe_settings_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        name = "MESH_" + "_".join(str(p) for p in err.get("loc", ())).upper()
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ").rstrip(".")
        problems.append(f"{name}: {msg}")
    return "Invalid settings: " + "; ".join(problems) + ". Fix the environment or the .env file."


#: What a credentials file may set for an identity (the ``MESH_*`` setting each value fills).
CREDENTIAL_FIELDS = ("s3_access_key_id", "s3_secret_access_key", "iceberg_catalog_uri", "trino_user", "trino_password")
_SECRET_FIELDS = {"s3_access_key_id", "s3_secret_access_key", "iceberg_catalog_uri", "trino_password"}


def identity_credentials(path: Path, actor: str) -> dict[str, object]:
    """The credentials of ``actor`` in the credentials file ``path`` (secrets as SecretStr).

    The file must be private (no group or other permissions), like an SSH key, and hold an entry for the
    actor; otherwise a SettingsError says what to do. Values are never echoed."""
    import json
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"MESH_CREDENTIALS_FILE {path} does not exist; `mesh stack up` writes one, or unset "
                            "it and give the MESH_S3_*/MESH_TRINO_* settings directly.") from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"MESH_CREDENTIALS_FILE {path} is unreadable or not JSON ({type(exc).__name__}).") from None
    if stat.S_IMODE(mode) & 0o077:
        raise SettingsError(f"MESH_CREDENTIALS_FILE {path} is readable by other users (mode "
                            f"{stat.S_IMODE(mode):04o}); it holds secrets: chmod 600 {path}.")
    identities = raw.get("identities") if isinstance(raw, dict) else None
    entry = identities.get(actor) if isinstance(identities, dict) else None
    if not isinstance(entry, dict):
        known = ", ".join(sorted(identities)) if isinstance(identities, dict) else "none"
        raise SettingsError(f"MESH_CREDENTIALS_FILE {path} has no credentials for MESH_ACTOR={actor!r} "
                            f"(it has: {known}).")
    result: dict[str, object] = {}
    for name in CREDENTIAL_FIELDS:
        value = entry.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SettingsError(f"MESH_CREDENTIALS_FILE {path}: {actor}.{name} must be a string.")
        result[name] = SecretStr(value) if name in _SECRET_FIELDS else value
    return result
