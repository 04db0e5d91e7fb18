"""One error hierarchy for the whole platform.

Every message says what was wrong, where (product, field, file), what was
expected and what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PlatformError(Exception):
    """Root of every error the platform raises on purpose."""


class SettingsError(PlatformError):
    """The platform settings (environment / `.env`) are invalid."""


class InvalidNameError(PlatformError, ValueError):
    """An identifier (product, domain, column) is not a valid name."""


class ContractError(PlatformError):
    """A contract file is malformed or inconsistent."""


class UnknownProductError(PlatformError):
    """A product id that no contract declares."""


class StorageError(PlatformError):
    """The lake cannot be read or written."""


class TamperedError(StorageError):
    """A committed file differs from what its manifest recorded; the version is refused, never served."""


class AccessDeniedError(StorageError):
    """The store refused the acting identity's valid credentials this action: the access policy forbids it."""


class BrokenProductError(StorageError):
    """A product's pointer or manifest is unreadable; that one product is unavailable until repaired."""


class HostileTableError(BrokenProductError):
    """A product's Iceberg metadata points outside its folder or changes how Iceberg reads and writes.

    Nothing (not even repair) acts through such a table: it is restored by hand.
    """


class PublishError(PlatformError):
    """A publish was refused; the previously served version is untouched."""


class SchemaMismatchError(PublishError):
    """The files' schema differs from the contract."""


class QualityError(PublishError):
    """One or more blocking quality rules failed."""

    def __init__(self, message: str, failures: list[object] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class ConflictError(PublishError):
    """Another writer committed the same version first."""


class VersionNotFoundError(PlatformError):
    """A product has no such version (or no version at all yet)."""


class QueryError(PlatformError):
    """A SQL query against products failed."""


class ReadOnlyError(QueryError):
    """A statement that could write (COPY, ATTACH, CREATE, SET ...) was sent to a read-only session."""


class BreakingChangeError(ContractError):
    """A changed contract breaks consumers of the last published version without a major version bump."""


class OwnershipError(PlatformError):
    """The acting identity may not change this product (e.g. replace a registered contract)."""


class PolicyError(PlatformError):
    """The governance file or the contracts do not give a consistent access policy."""


class StackError(PlatformError):
    """A service of the native stack (S3 server, Trino) failed."""


class TrinoError(PlatformError):
    """Registering or querying products in Trino failed."""


class RegistrationError(PlatformError):
    """A version was committed but a post-commit registration (e.g. Trino) failed."""

    def __init__(self, message: str, manifest: object = None) -> None:
        super().__init__(message)
        self.manifest = manifest


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ` Did you mean 'x'?` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
