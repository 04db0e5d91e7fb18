#!/bin/sh
# One-shot job of docker-compose.yml (service iceberg-catalog-policy): applies
# the access policy to the Iceberg catalog database on every `docker compose up`.
#
# 1. governance/generated/postgres-roles.sql (`mesh policy render`): pyiceberg's
#    catalog tables unless they exist, one LOGIN role per service user, SELECT
#    for every role, writes only for the platform and the publishers, row-level
#    security confining each publisher to its own namespaces; roles the policy
#    dropped are dropped. One transaction, idempotent, holds no password.
# 2. passwords.sql from the provision job: each role's password as a SCRAM
#    verifier, so no password ever reaches PostgreSQL, its logs or this output.
# 3. The database owner stays without login (it bypasses row-level security).
#
# Environment: PGHOST, PGUSER (the superuser), PGDATABASE (the catalog
# database), PGPASSWORD, ICEBERG_CATALOG_OWNER, MESH_ROLES_SQL,
# MESH_CATALOG_VERIFIERS. Needs psql (the postgres image) and a POSIX shell.
set -eu

fail() {
    echo "iceberg-catalog-policy: error: $*" >&2
    exit 1
}

for name in PGHOST PGUSER PGDATABASE PGPASSWORD ICEBERG_CATALOG_OWNER MESH_ROLES_SQL MESH_CATALOG_VERIFIERS; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set. Copy .env.example to .env and fill it in."
    case "$value" in
        change-me*) fail "$name still has the placeholder value of .env.example. Set a real value in .env." ;;
    esac
done
[ -r "$MESH_ROLES_SQL" ] || fail "$MESH_ROLES_SQL is missing: run \`mesh policy render\` (governance/generated)."
[ -r "$MESH_CATALOG_VERIFIERS" ] ||
    fail "$MESH_CATALOG_VERIFIERS is missing: the provision job writes it (docker compose logs provision)."
# The verifiers file holds ALTER ROLE statements with SCRAM verifiers only, never a plaintext password.
while IFS= read -r line; do
    case "$line" in
        "" | "--"* | "BEGIN;" | "COMMIT;") ;;
        "ALTER ROLE \""*"\" WITH LOGIN PASSWORD 'SCRAM-SHA-256\$"*"';") ;;
        *) fail "$MESH_CATALOG_VERIFIERS has a line that is not a SCRAM verifier; run the provision job again." ;;
    esac
done <"$MESH_CATALOG_VERIFIERS"

run_psql() {
    # Warnings and errors only: the roles file's "already exists, skipping" notices are expected.
    PGOPTIONS="-c client_min_messages=warning" psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 "$@"
}

run_psql -f "$MESH_ROLES_SQL" >/dev/null || fail "applying $MESH_ROLES_SQL failed (nothing of it was applied)."
run_psql -f "$MESH_CATALOG_VERIFIERS" >/dev/null || fail "setting the catalog roles' passwords failed."
run_psql -v owner="$ICEBERG_CATALOG_OWNER" >/dev/null <<'SQL' || fail "cannot keep the owner from logging in."
ALTER ROLE :"owner" WITH NOLOGIN PASSWORD NULL;
SQL
echo "iceberg-catalog-policy: roles, privileges, row-level security and passwords applied to database $PGDATABASE."
