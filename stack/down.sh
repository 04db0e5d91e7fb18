#!/usr/bin/env bash
# Stop the native stack (SIGTERM, then SIGKILL after 30 s). Data, logs and credentials are kept.
# Usage: stack/down.sh [--home DIR]
# Thin wrapper over `python -m nativestack down`; see nativestack/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="python3"
cd "$root"
exec "$python" -m nativestack down "$@"
