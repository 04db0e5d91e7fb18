#!/bin/sh
# Start of the trino service: export the provisioned secrets that
# stack/trino/etc reads as ${ENV:...} (Trino reads secrets from the environment
# only), then run the image's launcher. The values come from trino.env of the
# provision job (nativestack/provision.py): the engine identity's read-only S3
# key and catalog password, and the internal shared secret. Only the names
# listed here are taken; nothing is printed.
#
# Environment: MESH_TRINO_ENV_FILE. Arguments: the command to run (run-trino ...).
set -eu

fail() {
    echo "trino entrypoint: error: $*" >&2
    exit 1
}

file=${MESH_TRINO_ENV_FILE:-}
[ -n "$file" ] || fail "MESH_TRINO_ENV_FILE is not set."
[ -r "$file" ] || fail "$file is missing: the provision job writes it (docker compose logs provision)."

wanted="LAKE_S3_ACCESS_KEY LAKE_S3_SECRET_KEY LAKE_CATALOG_USER LAKE_CATALOG_PASSWORD TRINO_SHARED_SECRET"
found=""
while IFS= read -r line; do
    case "$line" in "" | "#"*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    case " $wanted " in
        *" $key "*) ;;
        *) fail "$file sets '$key', which this entrypoint does not take." ;;
    esac
    case "$value" in
        "" | *[!A-Za-z0-9_-]*) fail "$file: the value of $key is empty or has unexpected characters." ;;
    esac
    export "$key=$value"
    found="$found $key"
done <"$file"
for key in $wanted; do
    case " $found " in
        *" $key "*) ;;
        *) fail "$file does not set $key: run the provision job again." ;;
    esac
done
unset MESH_TRINO_ENV_FILE
exec "$@"
