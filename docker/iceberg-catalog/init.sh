#!/bin/sh
# First start of the iceberg-catalog service (run by the postgres image's
# entrypoint from /docker-entrypoint-initdb.d, as the superuser, only while the
# data volume is empty): the Iceberg catalog's role and database.
#
# The role (ICEBERG_CATALOG_USER) can log in and owns its database
# (ICEBERG_CATALOG_DB), nothing more: no superuser, CREATEDB, CREATEROLE or
# replication. Trino and pyiceberg use it; the superuser stays for administration.
# The password goes into a SQLAlchemy URL unquoted, so it is limited to
# letters, digits, '-' and '_'.
# No `set -u`: the entrypoint sources scripts that are not executable.
set -e

fail() {
    echo "iceberg-catalog init: $*" >&2
    exit 1
}

[ -n "${ICEBERG_CATALOG_USER}" ] || fail "ICEBERG_CATALOG_USER is not set"
[ -n "${ICEBERG_CATALOG_DB}" ] || fail "ICEBERG_CATALOG_DB is not set"
[ -n "${ICEBERG_CATALOG_PASSWORD}" ] || fail "ICEBERG_CATALOG_PASSWORD is not set"
case "${ICEBERG_CATALOG_PASSWORD}" in
    change-me*) fail "ICEBERG_CATALOG_PASSWORD is still the placeholder from .env.example" ;;
    *[!A-Za-z0-9_-]*) fail "ICEBERG_CATALOG_PASSWORD may hold only letters, digits, '-' and '_' (it goes into a URL)" ;;
esac
[ "${#ICEBERG_CATALOG_PASSWORD}" -ge 16 ] || fail "ICEBERG_CATALOG_PASSWORD needs at least 16 characters"
[ "${ICEBERG_CATALOG_USER}" != "${POSTGRES_USER}" ] || fail "ICEBERG_CATALOG_USER must differ from POSTGRES_USER"

# psql variables: quoted by psql itself (:"name" identifiers, :'name' literals).
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    -v role="${ICEBERG_CATALOG_USER}" -v db="${ICEBERG_CATALOG_DB}" -v password="${ICEBERG_CATALOG_PASSWORD}" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
echo "iceberg-catalog init: role ${ICEBERG_CATALOG_USER} owns database ${ICEBERG_CATALOG_DB}"
