#!/bin/sh
# First start of the iceberg-catalog service (run by the postgres image's
# entrypoint from /docker-entrypoint-initdb.d, as the superuser, only while the
# data volume is empty): the Iceberg catalog's database and its owner.
#
# The owner (ICEBERG_CATALOG_OWNER) cannot log in: it only owns the database
# and pyiceberg's two catalog tables. Every service logs in as its own role of
# the access policy, which the iceberg-catalog-policy job creates and gives a
# password on every `docker compose up` (docker/iceberg-catalog/apply-policy.sh).
# No `set -u`: the entrypoint sources scripts that are not executable.
set -e

fail() {
    echo "iceberg-catalog init: $*" >&2
    exit 1
}

[ -n "${ICEBERG_CATALOG_OWNER}" ] || fail "ICEBERG_CATALOG_OWNER is not set"
[ -n "${ICEBERG_CATALOG_DB}" ] || fail "ICEBERG_CATALOG_DB is not set"
[ "${ICEBERG_CATALOG_OWNER}" != "${POSTGRES_USER}" ] || fail "ICEBERG_CATALOG_OWNER must differ from POSTGRES_USER"

# psql variables: quoted by psql itself (:"name" identifiers).
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    -v role="${ICEBERG_CATALOG_OWNER}" -v db="${ICEBERG_CATALOG_DB}" <<'SQL'
CREATE ROLE :"role" WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE :"db" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
echo "iceberg-catalog init: role ${ICEBERG_CATALOG_OWNER} (no login) owns database ${ICEBERG_CATALOG_DB}"
