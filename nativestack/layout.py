"""The state directory: where a stack keeps its pids, logs, credentials and data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """The files and folders of one state directory (``home``)."""

    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"

    @property
    def lock_file(self) -> Path:
        return self.home / ".lock"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def s3_data(self) -> Path:
        return self.home / "s3" / "data"

    @property
    def s3_meta(self) -> Path:
        return self.home / "s3" / "meta"

    @property
    def s3_iam(self) -> Path:
        return self.home / "s3" / "iam"

    @property
    def postgres_dir(self) -> Path:
        """PostgreSQL's folder: owned by the server's account when that is not ours."""
        return self.home / "postgres"

    @property
    def postgres_data(self) -> Path:
        return self.postgres_dir / "data"

    @property
    def postgres_socket_dir(self) -> Path:
        """The preferred Unix socket folder (see ``nativestack.postgres.socket_dir`` for long paths)."""
        return self.postgres_dir / "socket"

    def trino_data(self, node: str) -> Path:
        return self.home / "trino" / node

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.home / "logs" / f"{service}.log"
