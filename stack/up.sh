#!/usr/bin/env bash
# Start the native stack (S3 server, PostgreSQL, Trino) in the background and wait until healthy.
# Usage: stack/up.sh [--workers 1] [--s3-port 9070] [--postgres-port 5439] [--trino-port 8085] [--home DIR]
# Thin wrapper over `python -m nativestack up`; see nativestack/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="python3"
cd "$root"
exec "$python" -m nativestack up "$@"
