#!/bin/sh
# One-shot set-up of the MinIO server of docker-compose.yml (service minio-init):
# the lake bucket, and one MinIO user per service user of the access policy,
# each with its generated secret (from the provision job) and its rendered IAM
# policy (governance/generated/s3-policies/<name>.json, `mesh policy render`).
# Users that an earlier run created (policy mesh-*) and the policy no longer
# names are removed. The MinIO root account is used here and nowhere else.
# Idempotent: it runs on every `docker compose up`. Prints no secret.
#
# Environment: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, LAKE_BUCKET,
# MESH_S3_USERS_FILE (lines "<access key> <secret key>"), MESH_S3_POLICIES_DIR.
# Needs only `mc` and a POSIX shell (the mc image has no jq, awk or sed).
set -eu

fail() {
    echo "minio-init: error: $*" >&2
    exit 1
}

for name in MINIO_URL MINIO_ROOT_USER MINIO_ROOT_PASSWORD LAKE_BUCKET MESH_S3_USERS_FILE MESH_S3_POLICIES_DIR; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set. Copy .env.example to .env and fill it in."
    case "$value" in
        change-me*) fail "$name still has the placeholder value of .env.example. Set a real value in .env." ;;
    esac
done
[ "${#MINIO_ROOT_USER}" -ge 3 ] || fail "MINIO_ROOT_USER must have at least 3 characters."
[ "${#MINIO_ROOT_PASSWORD}" -ge 12 ] || fail "MINIO_ROOT_PASSWORD must have at least 12 characters."
[ -r "$MESH_S3_USERS_FILE" ] ||
    fail "$MESH_S3_USERS_FILE is missing: the provision job writes it (docker compose logs provision)."
[ -d "$MESH_S3_POLICIES_DIR" ] ||
    fail "$MESH_S3_POLICIES_DIR is missing: run \`mesh policy render\` (governance/generated/s3-policies)."

# Check every line before touching MinIO: a name, a secret, and a rendered policy for it.
users=""
while read -r user secret extra; do
    case "$user" in "" | "#"*) continue ;; esac
    [ -z "$extra" ] || fail "$MESH_S3_USERS_FILE: a line has more than '<access key> <secret key>'."
    case "$user" in
        *[!a-z0-9_]* | [!a-z]*) fail "$MESH_S3_USERS_FILE: '$user' is not a service user name." ;;
    esac
    case "$secret" in
        *[!A-Za-z0-9_-]*) fail "$MESH_S3_USERS_FILE: the secret of '$user' has unexpected characters." ;;
    esac
    [ "${#secret}" -ge 16 ] || fail "$MESH_S3_USERS_FILE: the secret of '$user' is shorter than 16 characters."
    [ "$user" != "$MINIO_ROOT_USER" ] || fail "service user '$user' must differ from MINIO_ROOT_USER."
    [ -r "$MESH_S3_POLICIES_DIR/$user.json" ] ||
        fail "no rendered S3 policy for '$user' in $MESH_S3_POLICIES_DIR: run \`mesh policy render\`."
    users="$users $user"
done <"$MESH_S3_USERS_FILE"
[ -n "$users" ] || fail "$MESH_S3_USERS_FILE names no service user."
for path in "$MESH_S3_POLICIES_DIR"/*.json; do
    [ -e "$path" ] || continue
    name=${path##*/}
    name=${name%.json}
    case " $users " in
        *" $name "*) ;;
        *) fail "$path has no generated secret: the provision job and \`mesh policy render\` disagree." ;;
    esac
done

alias=mesh
# Keys on stdin, never on a command line; mc's own messages could name them, so they are dropped.
printf '%s\n%s\n' "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" | mc alias set "$alias" "$MINIO_URL" >/dev/null 2>&1 ||
    fail "cannot log in to MinIO at $MINIO_URL as MINIO_ROOT_USER (wrong password, or the data volume was created with other root credentials?)."
mc mb --ignore-existing "$alias/$LAKE_BUCKET" >/dev/null

while read -r user secret extra; do
    case "$user" in "" | "#"*) continue ;; esac
    policy="mesh-$user"
    mc admin policy create "$alias" "$policy" "$MESH_S3_POLICIES_DIR/$user.json" >/dev/null ||
        fail "cannot create policy $policy from $MESH_S3_POLICIES_DIR/$user.json."
    printf '%s\n%s\n' "$user" "$secret" | mc admin user add "$alias" >/dev/null 2>&1 ||
        fail "cannot create user '$user'."
    if ! mc admin policy attach "$alias" "$policy" --user "$user" >/dev/null 2>&1; then
        # Attaching twice is refused; accept it when the user already has the policy.
        info=$(mc admin user info "$alias" "$user") || fail "cannot read user '$user' back."
        case "$info" in
            *"$policy"*) ;;
            *) fail "cannot attach policy $policy to user '$user'." ;;
        esac
    fi
done <"$MESH_S3_USERS_FILE"

# Users this script made (their policy is mesh-*) that the policy no longer names.
listing=$(mc admin user list "$alias") || fail "cannot list MinIO users."
removed=""
while read -r status user policies; do
    case "$policies" in mesh-* | *,mesh-*) ;; *) continue ;; esac
    case " $users " in *" $user "*) continue ;; esac
    mc admin user remove "$alias" "$user" >/dev/null || fail "cannot remove user '$user'."
    removed="$removed $user"
done <<EOF
$listing
EOF

echo "minio-init: bucket '$LAKE_BUCKET'; users with their rendered policies:$users${removed:+; removed:$removed}."
