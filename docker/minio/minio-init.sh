#!/bin/sh
# One-shot set-up of the MinIO server of docker-compose.yml (service minio-init):
# creates the lake bucket and the platform's S3 user, whose policy allows that
# bucket only. Trino and Dagster use that user; the MinIO root account is used
# here and nowhere else. Idempotent: it runs on every `docker compose up`.
#
# Environment: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, LAKE_BUCKET,
# LAKE_ACCESS_KEY_ID, LAKE_SECRET_ACCESS_KEY. Needs only `mc` and a POSIX shell.
set -eu

fail() {
    echo "minio-init: error: $*" >&2
    exit 1
}

for name in MINIO_URL MINIO_ROOT_USER MINIO_ROOT_PASSWORD LAKE_BUCKET LAKE_ACCESS_KEY_ID LAKE_SECRET_ACCESS_KEY; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set. Copy .env.example to .env and fill it in."
    case "$value" in
        change-me*) fail "$name still has the placeholder value of .env.example. Set a real value in .env." ;;
    esac
done
[ "${#MINIO_ROOT_PASSWORD}" -ge 8 ] || fail "MINIO_ROOT_PASSWORD must have at least 8 characters."
[ "${#LAKE_SECRET_ACCESS_KEY}" -ge 8 ] || fail "LAKE_SECRET_ACCESS_KEY must have at least 8 characters."
[ "${#LAKE_ACCESS_KEY_ID}" -ge 3 ] || fail "LAKE_ACCESS_KEY_ID must have at least 3 characters."
[ "$LAKE_ACCESS_KEY_ID" != "$MINIO_ROOT_USER" ] ||
    fail "LAKE_ACCESS_KEY_ID must differ from MINIO_ROOT_USER: the platform gets its own user, not the root account."

alias=mesh
policy="datamesh-lake-$LAKE_BUCKET"
policy_file="${TMPDIR:-/tmp}/$policy.json"

mc alias set "$alias" "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null ||
    fail "cannot log in to MinIO at $MINIO_URL as MINIO_ROOT_USER (wrong password, or the data volume was created with other root credentials?)."
mc mb --ignore-existing "$alias/$LAKE_BUCKET"

printf '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::%s", "arn:aws:s3:::%s/*"]}]}\n' \
    "$LAKE_BUCKET" "$LAKE_BUCKET" >"$policy_file"
mc admin policy create "$alias" "$policy" "$policy_file"
mc admin user add "$alias" "$LAKE_ACCESS_KEY_ID" "$LAKE_SECRET_ACCESS_KEY" >/dev/null
if ! mc admin policy attach "$alias" "$policy" --user "$LAKE_ACCESS_KEY_ID" >/dev/null 2>&1; then
    # Attaching twice is refused; accept it when the user already has the policy.
    info=$(mc admin user info "$alias" "$LAKE_ACCESS_KEY_ID") || fail "cannot read user $LAKE_ACCESS_KEY_ID back."
    case "$info" in
        *"$policy"*) ;;
        *) fail "cannot attach policy $policy to user $LAKE_ACCESS_KEY_ID." ;;
    esac
fi
echo "minio-init: bucket '$LAKE_BUCKET' and user '$LAKE_ACCESS_KEY_ID' (policy $policy) are ready."
