"""The lake: one storage API over a local folder or S3-compatible object storage.

Data files go through pyarrow file systems, so the same code writes to a
folder or a bucket. Two operations need more than pyarrow offers and are
implemented per backend:

* ``create_only`` — the manifest commit. Locally: write a temporary file and
  ``os.link`` it into place (fails if the target exists, and never exposes a
  half-written file). On S3: ``PUT`` with ``If-None-Match: *``; when the
  outcome is unknown (timeout), the object is read back and compared.
* ``replace`` — the "latest" pointer. Locally ``os.replace``; on S3 a ``PUT``
  (atomic per object).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs

from datamesh.errors import AccessDeniedError, ConflictError, StorageError

if TYPE_CHECKING:
    from datamesh.settings import LakeLocation, Settings


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None
    region: str = "us-east-1"

    @property
    def scheme(self) -> str:
        return "https" if (self.endpoint_url or "https").startswith("https") else "http"

    @property
    def endpoint_host(self) -> str | None:
        if not self.endpoint_url:
            return None
        return self.endpoint_url.split("://", 1)[-1].rstrip("/")


class Lake:
    """A lake rooted at a local folder or an ``s3://bucket/prefix`` URL."""

    def __init__(self, location: LakeLocation | str | Path, s3: S3Options | None = None) -> None:
        from datamesh.settings import LakeLocation

        if not isinstance(location, LakeLocation):
            location = LakeLocation.parse(location)
        self.location = location
        self.url = location.url
        self.s3 = s3
        self.root = location.root
        self.bucket = location.bucket
        if location.is_s3:
            if s3 is None:
                raise StorageError(f"Lake {location} is on S3 but no S3 settings were given; set MESH_S3_ENDPOINT_URL etc.")
            self.fs: pafs.FileSystem = pafs.S3FileSystem(
                access_key=s3.access_key_id,
                secret_key=s3.secret_access_key,
                region=s3.region,
                endpoint_override=s3.endpoint_host,
                scheme=s3.scheme,
                allow_bucket_creation=False,
                connect_timeout=5,
                request_timeout=30,
            )
            self._s3_client: Any = None
        else:
            Path(location.root).mkdir(parents=True, exist_ok=True)
            self.fs = pafs.LocalFileSystem()

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        s3 = None
        if settings.is_s3:
            s3 = S3Options(
                endpoint_url=settings.s3_endpoint_url,
                access_key_id=settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None,
                secret_access_key=(
                    settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
                ),
                region=settings.s3_region,
            )
        return cls(settings.lake, s3)

    def check(self) -> None:
        """Fail early, with a clear error, if the bucket is missing or the server unreachable."""
        if not self.is_s3:
            return
        try:
            info = self.fs.get_file_info(self.bucket)
        except OSError as exc:
            if is_access_denied(exc):
                # HeadBucket has no error body: a wrong secret looks like a denial. Every identity of the
                # policy may list the bucket, so here it means the credentials themselves were rejected.
                key = self.s3.access_key_id if self.s3 else None
                raise StorageError(
                    f"Could not reach the lake at {self.url}: the S3 credentials were rejected (access key "
                    f"'{key or '?'}'), or this identity may not even list bucket '{self.bucket}'. Check "
                    "MESH_S3_ACCESS_KEY_ID / MESH_S3_SECRET_ACCESS_KEY, or MESH_CREDENTIALS_FILE and MESH_ACTOR."
                ) from exc
            raise self.error_for(exc, "reach the lake at", self.bucket) from exc
        if info.type == pafs.FileType.NotFound:
            raise StorageError(
                f"Bucket '{self.bucket}' of lake {self.url} does not exist on {self.s3.endpoint_url if self.s3 else 'S3'}: "
                "create it (`mesh stack up` does for the native stack) or fix MESH_LAKE_URL."
            )

    # -- paths ------------------------------------------------------------------------

    @property
    def is_s3(self) -> bool:
        return self.s3 is not None

    def path(self, *parts: str) -> str:
        """A path inside the lake, in the file system's own notation."""
        return "/".join([self.root, *parts])

    def uri(self, path: str) -> str:
        """A URI that DuckDB, Trino and humans understand for a lake path."""
        return f"s3://{path}" if self.is_s3 else path

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1:] if path.startswith(self.root + "/") else path

    # -- basic I/O ----------------------------------------------------------------------

    def error_for(self, exc: Exception, action: str, path: str) -> StorageError:
        """A clear StorageError for a failed store call (AccessDeniedError when the policy refused it)."""
        where = self.uri(path)
        hint = ""
        text = str(exc)
        if self.is_s3:
            if any(m in text for m in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "INVALID_ACCESS_KEY_ID",
                                       "SIGNATURE_DOES_NOT_MATCH")):
                hint = " The S3 credentials were rejected: check MESH_S3_ACCESS_KEY_ID / MESH_S3_SECRET_ACCESS_KEY."
            elif is_access_denied(exc) or "403" in text:
                key = self.s3.access_key_id if self.s3 else None
                return AccessDeniedError(
                    f"Could not {action} {where}: access denied to S3 user '{key or '?'}' by the access policy "
                    "(`mesh policy show`). A domain's publisher writes only its own domain's products and reads "
                    "its declared inputs; the query identity cannot read products with PII columns on S3 (read "
                    "them through Trino, `mesh query --engine trino`, which masks them). Act as the owning "
                    "identity (MESH_ACTOR) or ask its team."
                )
            elif "NoSuchBucket" in text or "NO_SUCH_BUCKET" in text or "bucket does not exist" in text.lower():
                hint = f" Bucket '{self.bucket}' does not exist: create it (mesh stack up does) or fix MESH_LAKE_URL."
            elif "onnect" in text or "timed out" in text.lower() or "curl" in text.lower():
                hint = f" Is the S3 server at {self.s3.endpoint_url if self.s3 else '?'} running? (mesh stack status)"
        return StorageError(f"Could not {action} {where}: {text.splitlines()[0] if text else type(exc).__name__}.{hint}")

    def exists(self, path: str) -> bool:
        try:
            return self.fs.get_file_info(path).type != pafs.FileType.NotFound
        except OSError as exc:
            raise self.error_for(exc, "inspect", path) from exc

    @contextmanager
    def _reading(self, path: str) -> Iterator[Any]:
        """An input stream; a missing object is FileNotFoundError, any other failure a clear StorageError."""
        try:
            with self.fs.open_input_stream(path) as f:
                yield f
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "Path does not exist" in str(exc) or "NoSuchKey" in str(exc):
                raise FileNotFoundError(path) from exc
            raise self.error_for(exc, "read", path) from exc

    def read_bytes(self, path: str) -> bytes:
        with self._reading(path) as f:
            return f.read()

    def read_head(self, path: str, size: int) -> bytes:
        """At most the first ``size`` bytes (so a caller can refuse an oversized file unread)."""
        with self._reading(path) as f:
            return f.read(size)

    def file_infos(self, paths: list[str]) -> list[pafs.FileInfo]:
        """One ``FileInfo`` per path (type NotFound for a missing one), in one batched call."""
        if not paths:
            return []
        try:
            return list(self.fs.get_file_info(paths))
        except OSError as exc:
            raise self.error_for(exc, "inspect", paths[0]) from exc

    def sha256(self, path: str, *, chunk_bytes: int = 8 << 20) -> str:
        """The SHA-256 of a file, read as a stream (constant memory)."""
        digest = hashlib.sha256()
        with self._reading(path) as f:
            while chunk := f.read(chunk_bytes):
                digest.update(chunk)
        return digest.hexdigest()

    def write_bytes(self, path: str, data: bytes) -> None:
        try:
            self._ensure_parent(path)
            with self.fs.open_output_stream(path) as f:
                f.write(data)
        except OSError as exc:
            raise self.error_for(exc, "write", path) from exc

    def _ensure_parent(self, path: str) -> None:
        if not self.is_s3:
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    def open_output(self, path: str) -> Any:
        try:
            self._ensure_parent(path)
            return self.fs.open_output_stream(path)
        except OSError as exc:
            raise self.error_for(exc, "write", path) from exc

    def list_dir(self, path: str) -> list[pafs.FileInfo]:
        """Immediate children of a directory/prefix ([] if it does not exist)."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
        except OSError as exc:
            raise self.error_for(exc, "list", path) from exc
        return sorted(infos, key=lambda i: i.path)

    def list_files(self, path: str) -> list[pafs.FileInfo]:
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=True))
        except OSError as exc:
            raise self.error_for(exc, "list", path) from exc
        return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)

    # -- confined deletes ----------------------------------------------------------------

    def check_within(self, path: str, prefix: str, *, action: str = "delete") -> str:
        """Return ``path`` normalised if it lies strictly under ``prefix``; else raise StorageError.

        Every delete of a product's files goes through this check, so a
        tampered manifest (``run_id: ../../other_product``) can never make the
        platform delete outside the product it is working on.
        """
        norm_prefix = _normalise(prefix)
        norm_path = _normalise(path)
        problem = ""
        if "\x00" in path or "\\" in path:
            problem = "contains a NUL byte or a backslash"
        elif not norm_prefix.startswith(_normalise(self.root) + "/"):
            problem = f"its allowed prefix {self.uri(norm_prefix)} is not inside the lake root {self.uri(self.root)}"
        elif not norm_path.startswith(norm_prefix + "/") or norm_path == norm_prefix:
            problem = f"it resolves to {self.uri(norm_path)}, which is not strictly inside {self.uri(norm_prefix)}"
        elif not self.is_s3 and os.path.realpath(norm_path) != norm_path:
            # The lake root is resolved once; below it no component may be a symbolic link, or a
            # link planted in the product's folder would carry the delete outside the lake.
            problem = f"it passes through a symbolic link (it resolves to {os.path.realpath(norm_path)})"
        if problem:
            raise StorageError(
                f"Refused to {action} {self.uri(path)}: {problem}. Nothing was changed. A manifest or pointer "
                "naming such a path was edited by hand or by an attacker; run `mesh verify` and `mesh repair "
                "<product>`."
            )
        return norm_path

    def delete_dir_within(self, path: str, prefix: str) -> None:
        """Delete a directory tree, but only if it lies strictly under ``prefix`` (else StorageError)."""
        self.delete_dir(self.check_within(path, prefix))

    def delete_file_within(self, path: str, prefix: str) -> None:
        """Delete one file, but only if it lies strictly under ``prefix`` (else StorageError)."""
        self.delete_file(self.check_within(path, prefix))

    def move_within(self, src: str, dst: str, prefix: str) -> None:
        """Move a small object (a manifest, a pointer) to ``dst``; both must lie under ``prefix``.

        Copy create-only first, then delete the source: a crash in between
        leaves both copies, never neither.
        """
        src = self.check_within(src, prefix, action="move")
        dst = self.check_within(dst, prefix, action="move a file to")
        self.create_only(dst, self.read_bytes(src))
        self.delete_file(src)

    def delete_dir(self, path: str) -> None:
        try:
            if self.exists(path):
                self.fs.delete_dir(path)
        except OSError as exc:
            raise self.error_for(exc, "delete", path) from exc

    def delete_file(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if "does not exist" in str(exc) or "NoSuchKey" in str(exc):
                return
            raise self.error_for(exc, "delete", path) from exc

    # -- atomic primitives --------------------------------------------------------------

    def replace(self, path: str, data: bytes) -> None:
        """Atomically overwrite a small object (readers see old or new, never a mix)."""
        if self.is_s3:
            self.write_bytes(path, data)
            return
        tmp = _durable_temp_file(Path(path), data)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def create_only(self, path: str, data: bytes) -> None:
        """Create ``path`` with ``data`` unless it exists (then raise ConflictError)."""
        if self.is_s3:
            self._s3_create_only(path, data)
            return
        tmp = _durable_temp_file(Path(path), data)
        try:
            os.link(tmp, path)  # fails if the target exists; never exposes a partial file
        except FileExistsError:
            raise ConflictError(f"{path} already exists: another writer committed it first.") from None
        finally:
            tmp.unlink(missing_ok=True)

    def s3_client(self) -> Any:
        """A boto3 client for the S3 operations pyarrow lacks (conditional writes)."""
        if self._s3_client is None:
            import boto3
            from botocore.config import Config

            assert self.s3 is not None
            self._s3_client = boto3.client(
                "s3",
                endpoint_url=self.s3.endpoint_url,
                aws_access_key_id=self.s3.access_key_id,
                aws_secret_access_key=self.s3.secret_access_key,
                region_name=self.s3.region,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                              connect_timeout=5, read_timeout=30),
            )
        return self._s3_client

    def _s3_create_only(self, path: str, data: bytes) -> None:
        import botocore.exceptions as bex

        bucket, key = path.split("/", 1)
        token = uuid.uuid4().hex
        try:
            self.s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*",
                                        Metadata={"mesh-commit-token": token})
        except bex.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ConflictError(f"s3://{path} already exists: another writer committed it first.") from None
            raise self.error_for(exc, "commit", path) from exc
        except (bex.ReadTimeoutError, bex.ConnectionClosedError) as exc:
            # Outcome unknown: read back and decide by our token.
            try:
                head = self.s3_client().head_object(Bucket=bucket, Key=key)
            except bex.ClientError:
                raise self.error_for(exc, "commit", path) from exc
            if head.get("Metadata", {}).get("mesh-commit-token") != token:
                raise ConflictError(f"s3://{path} already exists: another writer committed it first.") from None
        except bex.BotoCoreError as exc:
            raise self.error_for(exc, "commit", path) from exc


def is_access_denied(exc: BaseException) -> bool:
    """Whether a store call failed because the credentials may not do it (pyarrow's and botocore's wording)."""
    return any(m in str(exc) for m in ("AccessDenied", "ACCESS_DENIED"))


def _normalise(path: str) -> str:
    """Collapse ``.``, ``..`` and doubled slashes (no file system access)."""
    return posixpath.normpath(path) if path else path


def _durable_temp_file(target: Path, data: bytes) -> Path:
    """Write ``data`` to a fsynced temporary file beside ``target`` and return its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)
