#!/bin/sh
# Start of the dagster-proxy service (caddy image): check the UI credentials
# from .env, hash the password (bcrypt, `caddy hash-password` reading it on
# stdin), drop the plaintext from the environment and run Caddy with
# docker/proxy/Caddyfile. Prints no secret.
#
# Environment: DAGSTER_UI_USER, DAGSTER_UI_PASSWORD, DAGSTER_UPSTREAM.
set -eu

fail() {
    echo "dagster-proxy: error: $*" >&2
    exit 1
}

for name in DAGSTER_UI_USER DAGSTER_UI_PASSWORD DAGSTER_UPSTREAM; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set. Copy .env.example to .env and fill it in."
    case "$value" in
        change-me*) fail "$name still has the placeholder value of .env.example. Set a real value in .env." ;;
    esac
done
case "$DAGSTER_UI_USER" in
    *[!A-Za-z0-9._-]*) fail "DAGSTER_UI_USER may hold only letters, digits, '.', '_' and '-'." ;;
esac
[ "${#DAGSTER_UI_PASSWORD}" -ge 16 ] || fail "DAGSTER_UI_PASSWORD needs at least 16 characters."

DAGSTER_UI_PASSWORD_HASH=$(printf '%s\n' "$DAGSTER_UI_PASSWORD" | caddy hash-password --algorithm bcrypt) ||
    fail "cannot hash DAGSTER_UI_PASSWORD."
unset DAGSTER_UI_PASSWORD
export DAGSTER_UI_PASSWORD_HASH
exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
