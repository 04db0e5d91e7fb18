"""docker-compose.yml, its Dockerfile and Dagster files agree with the spec and the project.

No Docker engine is needed: the compose file is checked against the Compose
Specification's JSON schema (docker/schema/compose-spec.json), against the
native stack's Trino configuration and pins, against the platform settings, and
for credentials. Each checker returns a list of problems; the ``*_can_fail``
tests feed it a broken copy to show it notices.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

import nativestack
from datamesh.paths import PROJECT_ROOT
from datamesh.settings import Settings

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
DOCKER_DIR = PROJECT_ROOT / "docker"
COMPOSE_SCHEMA = DOCKER_DIR / "schema" / "compose-spec.json"
DAGSTER_DIR = DOCKER_DIR / "dagster"
MINIO_INIT = DOCKER_DIR / "minio" / "minio-init.sh"
CATALOG_INIT = DOCKER_DIR / "iceberg-catalog" / "init.sh"
TRINO_ETC = nativestack.STACK_DIR / "trino" / "etc"
TRINO_CONTAINER_ETC = PurePosixPath("/etc/trino")

SERVICES = {
    "minio", "minio-init", "trino", "iceberg-catalog", "iceberg-catalog-init", "postgres",
    "dagster-webserver", "dagster-daemon",
}
ONE_SHOT = {"minio-init", "iceberg-catalog-init"}
DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|ROOT_USER|TOKEN|_KEY$")
PLACEHOLDER = "change-me"


# ---------------------------------------------------------------------------
# Compose variable interpolation (the subset of the spec this project allows)

_DOLLAR = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?", re.DOTALL)


@dataclass(frozen=True)
class VarRef:
    """One ``${NAME...}`` in the compose file."""

    name: str
    op: str | None  # None, ":-", "-", ":?" or "?"
    arg: str | None
    text: str

    @property
    def required(self) -> bool:
        return self.op in (":?", "?")

    @property
    def default(self) -> str | None:
        return self.arg if self.op in (":-", "-") else None


def parse_refs(value: str) -> list[VarRef]:
    refs = []
    for match in _DOLLAR.finditer(value):
        if match["escaped"]:
            continue
        if match["named"]:
            refs.append(VarRef(match["named"], None, None, match[0]))
            continue
        braced = _BRACED.fullmatch(match["braced"])
        if braced is None or "$" in (braced["arg"] or ""):
            raise ValueError(f"Unsupported interpolation {match[0]!r} in {value!r}.")
        refs.append(VarRef(braced["name"], braced["op"], braced["arg"], match[0]))
    return refs


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        (ref,) = parse_refs(match[0])
        current = env.get(ref.name)
        if ref.required and not current:
            raise KeyError(f"{ref.name}: {ref.arg}")
        if current is None or (ref.op == ":-" and current == ""):
            return ref.default or ""
        return current

    return _DOLLAR.sub(replace, value)


def strings(node: Any) -> Iterator[str]:
    """Every string value (not key) in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def render(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, Mapping):
        return {key: render(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [render(value, env) for value in node]
    return node


def all_refs(compose: Mapping[str, Any]) -> list[VarRef]:
    return [ref for value in strings(compose) for ref in parse_refs(value)]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{number}: expected NAME=value: {line!r}"
        values[key] = value
    return values


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (map or list syntax)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml must be a YAML mapping"
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def rendered(compose: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with .env.example as .env."""
    return render(compose, env_example)


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft7Validator:
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", (COMPOSE_SCHEMA.parent / "README.md").read_text())
    assert recorded and hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest() == recorded[1], (
        "docker/schema/compose-spec.json differs from the copy recorded in docker/schema/README.md"
    )
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


# ---------------------------------------------------------------------------
# Structure and the Compose Specification


def schema_problems(validator: jsonschema.Draft7Validator, document: Mapping[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_has_the_stack_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_compose_file_is_valid_against_the_compose_specification(
    schema_validator: jsonschema.Draft7Validator, compose: dict[str, Any], rendered: dict[str, Any]
) -> None:
    assert schema_problems(schema_validator, compose) == []
    assert schema_problems(schema_validator, rendered) == []


def test_schema_check_can_fail(schema_validator: jsonschema.Draft7Validator, compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["trino"]["depends_on"]["minio-init"]["condition"] = "service_finished"
    broken["services"]["postgres"]["healthcheck"]["intervall"] = "5s"
    problems = schema_problems(schema_validator, broken)
    assert any("depends_on" in p for p in problems) and any("intervall" in p for p in problems)


def reference_problems(compose: Mapping[str, Any]) -> list[str]:
    """Services, named volumes, networks and bind-mounted paths that are named but missing."""
    services = compose.get("services") or {}
    volumes = set(compose.get("volumes") or {})
    networks = set(compose.get("networks") or {}) | {"default"}
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on") or []
        for dependency in depends:
            if dependency not in services:
                problems.append(f"{name}: depends_on unknown service {dependency!r}")
        for network in service.get("networks") or []:
            if network not in networks:
                problems.append(f"{name}: unknown network {network!r}")
        for mount in service.get("volumes") or []:
            source, kind = _mount_source(mount)
            if kind == "volume" and source not in volumes:
                problems.append(f"{name}: unknown named volume {source!r}")
            if kind == "bind" and not (PROJECT_ROOT / source).exists():
                problems.append(f"{name}: bind-mounted path {source!r} does not exist")
    return problems


def _mount_source(mount: str | Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(mount, str):
        source = mount.split(":")[0]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        return source, kind
    return str(mount.get("source", "")), str(mount.get("type", "volume"))


def test_every_named_service_volume_and_network_exists(compose: dict[str, Any]) -> None:
    assert reference_problems(compose) == []


def test_reference_check_can_fail(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["trino"]["depends_on"]["ghost"] = {"condition": "service_started"}
    broken["services"]["postgres"]["networks"] = ["backend"]
    del broken["volumes"]["postgres-data"]
    broken["services"]["minio-init"]["volumes"][0]["source"] = "./docker/minio/missing.sh"
    problems = reference_problems(broken)
    assert len(problems) == 4, problems


def dependency_problems(compose: Mapping[str, Any]) -> list[str]:
    """Health conditions need a health check; completion conditions a one-shot service."""
    services = compose["services"]
    problems = []
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition")
            target = services.get(dependency, {})
            if condition == "service_healthy" and "healthcheck" not in target:
                problems.append(f"{name} waits for {dependency} to be healthy, which has no healthcheck")
            if condition == "service_completed_successfully" and target.get("restart", "no") != "no":
                problems.append(f"{name} waits for {dependency} to complete, which restarts")
    return problems


def test_start_order_waits_for_health_and_initialisation(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert dependency_problems(compose) == []
    assert services["trino"]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    assert services["minio-init"]["depends_on"]["minio"] == {"condition": "service_healthy"}
    # Trino never creates the Iceberg catalog tables: iceberg-catalog-init does, before it starts.
    assert services["trino"]["depends_on"]["iceberg-catalog-init"] == {"condition": "service_completed_successfully"}
    assert services["iceberg-catalog-init"]["depends_on"] == {"iceberg-catalog": {"condition": "service_healthy"}}
    for name in DAGSTER_SERVICES:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "minio-init": {"condition": "service_completed_successfully"},
            "trino": {"condition": "service_healthy"},
        }
    long_running = SERVICES - ONE_SHOT
    assert all("healthcheck" in services[name] for name in long_running)
    assert all(services[name]["restart"] == "no" for name in ONE_SHOT)
    assert {"minio-data", "postgres-data", "iceberg-catalog-data"} <= set(compose["volumes"])


def test_dependency_check_can_fail(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    del broken["services"]["trino"]["healthcheck"]
    broken["services"]["minio-init"]["restart"] = "on-failure"
    problems = dependency_problems(broken)
    # two Dagster services wait for trino; they and trino wait for minio-init
    assert len(problems) == 5, problems


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{name}: image {image!r} must have a fixed tag"
    assert compose["services"]["minio"]["image"].rpartition(":")[2].startswith("RELEASE.")
    assert compose["services"]["minio-init"]["image"].rpartition(":")[2].startswith("RELEASE.")


# ---------------------------------------------------------------------------
# Trino: the native stack's release and configuration


def trino_mount_problems(service: Mapping[str, Any], etc_dir: Path = TRINO_ETC) -> list[str]:
    """Whether the container sees exactly the files of ``etc_dir`` at /etc/trino, read-only."""
    mounts = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, str):
            source, target, *mode = mount.split(":")
            read_only = "ro" in (mode[0].split(",") if mode else [])
        else:
            source, target, read_only = mount["source"], mount["target"], bool(mount.get("read_only"))
        mounts.append(((PROJECT_ROOT / source).resolve(), PurePosixPath(target), read_only))
    problems = []
    for source, target, read_only in mounts:
        if not read_only:
            problems.append(f"{source} is mounted read-write at {target}")
        if not source.is_relative_to(etc_dir.resolve()):
            problems.append(f"{source} is mounted but is not part of {etc_dir}")
        elif target != TRINO_CONTAINER_ETC / source.relative_to(etc_dir.resolve()).as_posix():
            problems.append(f"{source} is mounted at {target}, not where Trino reads it")
    for path in sorted(p for p in etc_dir.rglob("*") if p.is_file()):
        if not any(path.resolve().is_relative_to(source) for source, _, _ in mounts):
            problems.append(f"{path.relative_to(etc_dir)} of the native stack is not mounted")
    return problems


def trino_env_names(etc_dir: Path = TRINO_ETC) -> set[str]:
    """Names of the ``${ENV:NAME}`` placeholders in the Trino configuration."""
    names: set[str] = set()
    for path in etc_dir.rglob("*"):
        if path.is_file():
            names |= set(re.findall(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}", _without_comments(path)))
    return names


def _without_comments(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith(("#", "!")))


def test_trino_runs_the_native_stacks_release(compose: dict[str, Any]) -> None:
    image = compose["services"]["trino"]["image"]
    assert image == f"trinodb/trino:{nativestack.load_pins().trino_version}"


def test_trino_mounts_exactly_the_native_stack_configuration(compose: dict[str, Any]) -> None:
    assert trino_mount_problems(compose["services"]["trino"]) == []


def test_trino_mount_check_can_fail() -> None:
    only_config = {"volumes": ["./stack/trino/etc/config.properties:/etc/trino/config.properties:ro"]}
    problems = trino_mount_problems(only_config)
    assert any("jvm.config" in p for p in problems) and any("lake.properties" in p for p in problems)
    writable = {"volumes": [{"type": "bind", "source": "./stack/trino/etc", "target": "/etc/trino"}]}
    assert trino_mount_problems(writable) == [f"{TRINO_ETC.resolve()} is mounted read-write at /etc/trino"]
    elsewhere = {"volumes": ["./stack/trino/etc:/opt/trino/etc:ro"]}
    assert len(trino_mount_problems(elsewhere)) == 1


def test_trino_gets_every_variable_its_configuration_reads(rendered: dict[str, Any]) -> None:
    names = trino_env_names()
    assert {"TRINO_NODE_ID", "LAKE_S3_ENDPOINT", "LAKE_CATALOG_JDBC_URL"} <= names  # the scan finds them
    env = environment(rendered["services"]["trino"])
    missing = sorted(names - set(env))
    assert not missing, f"the trino service does not set {missing}, which stack/trino/etc reads"
    assert all(env[name] for name in names), "every Trino configuration variable needs a non-empty value"


def test_trino_container_is_a_single_coordinator_on_the_lake(rendered: dict[str, Any]) -> None:
    service = rendered["services"]["trino"]
    env = environment(service)
    assert env["TRINO_COORDINATOR"] == env["TRINO_INCLUDE_COORDINATOR"] == "true"
    port = env["TRINO_HTTP_PORT"]
    assert env["TRINO_DISCOVERY_URI"].endswith(f":{port}")
    assert any(str(p["target"]) == port for p in service["ports"])
    assert f"localhost/{port}" in " ".join(service["healthcheck"]["test"])
    assert env["LAKE_CATALOG_JDBC_URL"] == "jdbc:postgresql://iceberg-catalog:5432/lake"
    command = " ".join(service["command"])
    assert "--data-dir=" in command  # node.properties has no data dir; the native stack passes one too
    assert "node.bind-ip" not in command and "node.internal-address" not in command


def test_trino_configuration_has_nothing_machine_specific() -> None:
    """The container uses the files unchanged: addresses and paths must come from ${ENV:...}."""
    for path in (p for p in TRINO_ETC.rglob("*") if p.is_file()):
        text = re.sub(r"\$\{ENV:[^}]*\}", "", _without_comments(path))
        for forbidden in ("127.0.0.1", "localhost", "node.bind-ip", "node.internal-address", "node.data-dir"):
            assert forbidden not in text, f"{path.relative_to(TRINO_ETC)} names {forbidden!r}"
        assert not re.search(r"=\s*/(home|root|tmp|usr|opt|var)/", text), f"{path.name} names a host path"


# ---------------------------------------------------------------------------
# Variables, .env.example and credentials


def variable_problems(compose: Mapping[str, Any], listed: Mapping[str, str]) -> list[str]:
    refs = all_refs(compose)
    used = {ref.name for ref in refs}
    problems = [f"${{{name}}} is used but not listed in .env.example" for name in sorted(used - set(listed))]
    unused = sorted(set(listed) - used)
    problems += [f".env.example lists {name}, which docker-compose.yml does not use" for name in unused]
    for name in sorted(used):
        mine = [ref for ref in refs if ref.name == name]
        kinds = {("required" if r.required else "default" if r.default is not None else "plain") for r in mine}
        defaults = {r.default for r in mine if r.default is not None}
        if len(kinds) > 1 or len(defaults) > 1:
            problems.append(f"{name} is used in different ways: {sorted({r.text for r in mine})}")
        if "plain" in kinds:
            problems.append(f"{name} needs a default or a :? message")
        if len(defaults) == 1 and name in listed and listed[name] not in defaults:
            (default,) = defaults
            problems.append(f".env.example sets {name}={listed[name]}, the compose default is {default}")
    return problems


def test_every_variable_is_listed_in_env_example(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    assert variable_problems(compose, env_example) == []


def test_variable_check_can_fail(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["minio"]["environment"]["MINIO_BROWSER"] = "${MINIO_BROWSER}"
    broken["services"]["postgres"]["environment"]["POSTGRES_DB"] = "${DAGSTER_POSTGRES_DB:-other}"
    listed = {**env_example, "UNUSED": "1", "LAKE_REGION": "eu-west-1"}
    problems = variable_problems(broken, listed)
    assert problems == [
        "${MINIO_BROWSER} is used but not listed in .env.example",
        ".env.example lists UNUSED, which docker-compose.yml does not use",
        "DAGSTER_POSTGRES_DB is used in different ways: "
        "['${DAGSTER_POSTGRES_DB:-dagster}', '${DAGSTER_POSTGRES_DB:-other}']",
        ".env.example sets LAKE_REGION=eu-west-1, the compose default is us-east-1",
        "MINIO_BROWSER needs a default or a :? message",
    ]


def secret_problems(compose: Mapping[str, Any]) -> list[str]:
    """Every credential in a service environment is exactly one required ``${VAR:?message}``."""
    problems = []
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if not SECRET_KEY.search(key):
                continue
            refs = parse_refs(value)
            if len(refs) != 1 or refs[0].text != value or refs[0].op != ":?" or not refs[0].arg:
                problems.append(f"{name}: {key} must be ${{VAR:?message}} from .env, not {value!r}")
    text = "\n".join(strings(compose)).lower()
    if "minioadmin" in text:
        problems.append("the MinIO default credentials appear in the file")
    return problems


def test_no_service_sets_a_literal_credential(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    assert secret_problems(compose) == []
    required = {ref.name for ref in all_refs(compose) if ref.required}
    assert required == {
        "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "LAKE_ACCESS_KEY_ID", "LAKE_SECRET_ACCESS_KEY",
        "DAGSTER_POSTGRES_PASSWORD", "ICEBERG_POSTGRES_PASSWORD", "ICEBERG_CATALOG_PASSWORD",
    }
    for name in required:
        assert env_example[name].startswith(PLACEHOLDER), f".env.example must not hold a real value for {name}"
    for path in (COMPOSE_FILE, ENV_EXAMPLE, DOCKERFILE, *DOCKER_DIR.rglob("*")):
        if path.is_file() and path != COMPOSE_SCHEMA:
            assert "minioadmin" not in path.read_text().lower(), f"{path} names MinIO's default credentials"


def test_secret_check_can_fail(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "hunter22"
    broken["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"] = "${MINIO_ROOT_PASSWORD:-minioadmin}"
    broken["services"]["trino"]["environment"]["LAKE_S3_SECRET_KEY"] = "x${LAKE_SECRET_ACCESS_KEY:?set it}"
    assert len(secret_problems(broken)) == 4


def test_a_missing_credential_stops_interpolation(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    without = {k: v for k, v in env_example.items() if k != "LAKE_SECRET_ACCESS_KEY"}
    with pytest.raises(KeyError, match="LAKE_SECRET_ACCESS_KEY"):
        render(compose, without)


def test_published_ports_stay_on_the_host_by_default(rendered: dict[str, Any]) -> None:
    published = [p for s in rendered["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)
    assert "ports" not in rendered["services"]["postgres"]
    assert "ports" not in rendered["services"]["iceberg-catalog"]


# ---------------------------------------------------------------------------
# The platform's settings inside the Dagster containers


def env_bucket(rendered: Mapping[str, Any]) -> str:
    return environment(rendered["services"]["minio-init"])["LAKE_BUCKET"]


def test_dagster_services_configure_the_platform_for_the_stack(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = rendered["services"]
    trino_env = environment(services["trino"])
    fields = {f"MESH_{name.upper()}" for name in Settings.model_fields}
    for name in DAGSTER_SERVICES:
        env = environment(services[name])
        unknown = sorted(k for k in env if k.startswith("MESH_") and k not in fields)
        assert not unknown, f"{name}: {unknown} are not platform settings (datamesh/settings.py)"
        for key in list(os.environ):
            if key.startswith("MESH_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)
        assert settings.is_s3 and settings.lake_url == f"s3://{env_bucket(rendered)}/"
        assert settings.s3_endpoint_url == trino_env["LAKE_S3_ENDPOINT"] == "http://minio:9000"
        assert settings.s3_region == trino_env["LAKE_S3_REGION"]
        assert settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None
        assert settings.s3_access_key_id.get_secret_value() == trino_env["LAKE_S3_ACCESS_KEY"]
        assert settings.s3_secret_access_key.get_secret_value() == trino_env["LAKE_S3_SECRET_KEY"]
        assert settings.trino_host in services and settings.trino_host == "trino"
        assert str(settings.trino_port) == trino_env["TRINO_HTTP_PORT"]
        assert (TRINO_ETC / "catalog" / f"{settings.trino_catalog}.properties").is_file()
        assert env["DAGSTER_POSTGRES_HOSTNAME"] in services
        postgres = environment(services["postgres"])
        assert env["DAGSTER_POSTGRES_PASSWORD"] == postgres["POSTGRES_PASSWORD"]
        assert env["DAGSTER_POSTGRES_USER"] == postgres["POSTGRES_USER"]
        assert env["DAGSTER_POSTGRES_DB"] == postgres["POSTGRES_DB"]


def test_minio_init_sets_up_the_user_trino_and_dagster_use(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    init = environment(services["minio-init"])
    trino = environment(services["trino"])
    assert init["LAKE_ACCESS_KEY_ID"] == trino["LAKE_S3_ACCESS_KEY"]
    assert init["LAKE_SECRET_ACCESS_KEY"] == trino["LAKE_S3_SECRET_KEY"]
    assert init["MINIO_ROOT_USER"] == environment(services["minio"])["MINIO_ROOT_USER"]
    assert init["LAKE_ACCESS_KEY_ID"] != init["MINIO_ROOT_USER"]
    assert "MINIO_ROOT_PASSWORD" not in trino and all(
        "MINIO_ROOT_PASSWORD" not in environment(services[n]) for n in DAGSTER_SERVICES
    )


def test_iceberg_catalog_is_one_database_for_trino_pyiceberg_and_the_platform(
    compose: dict[str, Any], rendered: dict[str, Any]
) -> None:
    from sqlalchemy.engine import make_url

    services = rendered["services"]
    catalog = environment(services["iceberg-catalog"])
    trino = environment(services["trino"])
    init = environment(services["iceberg-catalog-init"])
    role, database, password = (
        catalog["ICEBERG_CATALOG_USER"], catalog["ICEBERG_CATALOG_DB"], catalog["ICEBERG_CATALOG_PASSWORD"],
    )
    assert role != catalog["POSTGRES_USER"], "the catalog role is not the superuser"
    assert trino["LAKE_CATALOG_JDBC_URL"] == f"jdbc:postgresql://iceberg-catalog:5432/{database}"
    assert (trino["LAKE_CATALOG_USER"], trino["LAKE_CATALOG_PASSWORD"]) == (role, password)
    for env in (init, *(environment(services[name]) for name in DAGSTER_SERVICES)):
        url = make_url(env["MESH_ICEBERG_CATALOG_URI"])
        assert url.drivername == "postgresql+psycopg2"  # psycopg2 is in requirements.lock
        assert (url.host, url.port, url.database) == ("iceberg-catalog", 5432, database)
        assert (url.username, url.password) == (role, password)
    warehouse = f"s3://{env_bucket(rendered)}/{nativestack.WAREHOUSE_PREFIX}"
    assert trino["LAKE_WAREHOUSE_DIR"] == init["ICEBERG_WAREHOUSE"] == warehouse
    # The superuser's password goes to iceberg-catalog alone (.env.example's placeholders are all alike,
    # so this looks at the variable, not its value).
    users = sorted(n for n, s in compose["services"].items() if any(
        ref.name == "ICEBERG_POSTGRES_PASSWORD" for value in strings(s) for ref in parse_refs(value)
    ))
    assert users == ["iceberg-catalog"]
    # The name pyiceberg creates the tables under is the one Trino reads them with.
    properties = dict(
        line.split("=", 1) for line in _without_comments(TRINO_ETC / "catalog" / "lake.properties").splitlines()
        if "=" in line
    )
    assert properties["iceberg.jdbc-catalog.catalog-name"] == nativestack.ICEBERG_CATALOG_NAME
    assert f'SqlCatalog("{nativestack.ICEBERG_CATALOG_NAME}"' in " ".join(services["iceberg-catalog-init"]["command"])
    mounts = [m for m in services["iceberg-catalog"]["volumes"] if isinstance(m, dict)]
    assert [(m["source"], m["target"], m["read_only"]) for m in mounts] == [
        ("./docker/iceberg-catalog/init.sh", "/docker-entrypoint-initdb.d/10-catalog-role.sh", True)
    ]
    assert "-h" in services["iceberg-catalog"]["healthcheck"]["test"], "pg_isready over TCP, not the init socket"


STUB_PSQL = """#!/bin/sh
printf '%s\\n' "$*" >"$PSQL_LOG"
cat >"$PSQL_LOG.sql"
"""


def run_catalog_init(tmp_path: Path, **overrides: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "psql").write_text(STUB_PSQL)
    (bin_dir / "psql").chmod(0o755)
    log = tmp_path / "psql.log"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "PSQL_LOG": str(log),
        "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
        "ICEBERG_CATALOG_USER": "lake", "ICEBERG_CATALOG_DB": "lake",
        "ICEBERG_CATALOG_PASSWORD": "abcdefghijklmnop-_1234", **overrides,
    }
    result = subprocess.run(["sh", str(CATALOG_INIT)], env=env, capture_output=True, text=True, check=False)
    return result, log


def test_catalog_init_is_valid_posix_shell() -> None:
    assert subprocess.run(["sh", "-n", str(CATALOG_INIT)], check=False).returncode == 0


def test_catalog_init_creates_a_least_privileged_role_owning_its_database(tmp_path: Path) -> None:
    result, log = run_catalog_init(tmp_path)
    assert result.returncode == 0, result.stderr
    args = log.read_text()
    assert "-v ON_ERROR_STOP=1" in args and "--username postgres --dbname postgres" in args
    assert "-v role=lake -v db=lake -v password=abcdefghijklmnop-_1234" in args
    script = (tmp_path / "psql.log.sql").read_text()
    assert "abcdefghijklmnop" not in script, "the password reaches psql as a variable, quoted by psql"
    assert 'CREATE ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION' in script
    assert "PASSWORD :'password'" in script
    assert 'CREATE DATABASE :"db" OWNER :"role"' in script


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ICEBERG_CATALOG_PASSWORD": ""}, "ICEBERG_CATALOG_PASSWORD is not set"),
        ({"ICEBERG_CATALOG_PASSWORD": "change-me"}, "placeholder"),
        ({"ICEBERG_CATALOG_PASSWORD": "short-1"}, "at least 16 characters"),
        ({"ICEBERG_CATALOG_PASSWORD": "has/slash@and:colon12345"}, "only letters, digits"),
        ({"ICEBERG_CATALOG_USER": "postgres"}, "must differ from POSTGRES_USER"),
    ],
)
def test_catalog_init_refuses_bad_settings_before_calling_psql(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    result, log = run_catalog_init(tmp_path, **overrides)
    assert result.returncode != 0 and message in result.stderr
    assert not log.exists()


# ---------------------------------------------------------------------------
# Dockerfile and build context


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", path.read_text())
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_installs_exactly_the_lock_file() -> None:
    instructions = dockerfile_instructions()
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    assert [rest for kind, rest in instructions if kind == "FROM"] == ["${PYTHON_IMAGE}"]
    installs = [rest for kind, rest in instructions if kind == "RUN" and re.search(r"\b(pip|uv pip) install\b", rest)]
    assert any("-r requirements.lock" in run for run in installs)
    project = [run for run in installs if re.search(r"install\b.*(-e )?\.(\s|$)", run)]
    assert project and all("--no-deps" in run for run in project), "the project installs without resolving again"
    for run in installs:  # nothing else is installed unpinned
        for command in re.split(r"&&|;", run):
            if re.search(r"\b(pip|uv pip) install\b", command) and "-r requirements.lock" not in command:
                words = [w for w in command.split() if not w.startswith("-")]
                packages = [w for w in words if w not in ("python", "pip", "uv", "install", ".")]
                assert all("==" in w for w in packages), f"unpinned install in the Dockerfile: {command.strip()}"
    makefile_uv = re.search(r"uv==([0-9.]+)", (PROJECT_ROOT / "Makefile").read_text())
    assert makefile_uv and f"ARG UV_VERSION={makefile_uv[1]}" in text, "use the Makefile's uv release"
    users = [rest for kind, rest in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0"), "the services must not run as root"


def test_image_layout_matches_compose_and_workspace(compose: dict[str, Any]) -> None:
    instructions = dockerfile_instructions()
    env_line = " ".join(rest for kind, rest in instructions if kind == "ENV")
    home = re.search(r"DAGSTER_HOME=(\S+)", env_line)
    assert home, "the Dockerfile sets DAGSTER_HOME"
    copies = " ".join(rest for kind, rest in instructions if kind == "COPY")
    assert "docker/dagster/dagster.yaml" in copies and "docker/dagster/workspace.yaml" in copies
    workdir = [rest for kind, rest in instructions if kind == "WORKDIR"][-1]
    workspace = yaml.safe_load((DAGSTER_DIR / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["working_directory"] == workdir
    for name in DAGSTER_SERVICES:
        service = compose["services"][name]
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert f"{home[1]}/workspace.yaml" in service["command"]
        assert any(str(v).endswith(f":{home[1]}/storage") for v in service["volumes"])
    assert any(p["target"] == 3000 for p in compose["services"]["dagster-webserver"]["ports"])


def test_build_context_excludes_secrets_but_not_what_the_image_copies() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for secret in (".env", ".venv", ".git"):
        assert secret in patterns, f".dockerignore must exclude {secret}"
    sources = ["requirements.lock", "pyproject.toml", "datamesh", "orchestration", "ml", "data_products", "sql"]
    for _, rest in (i for i in dockerfile_instructions() if i[0] == "COPY"):
        sources += [w for w in rest.split()[:-1] if not w.startswith("--") and w != "."]
    for source in sources:
        parts = PurePosixPath(source).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = [p for p in patterns if any(fnmatch.fnmatch(prefix, p) for prefix in prefixes)]
        assert not excluded, f"{source} is copied into the image but .dockerignore excludes it ({excluded})"
        assert (PROJECT_ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"


def test_lock_file_has_dagsters_postgres_storage() -> None:
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    dagster = re.search(r"^dagster==1\.(\d+)\.(\d+)$", lock, re.MULTILINE)
    assert dagster, "requirements.lock pins dagster"
    expected = f"dagster-postgres==0.{int(dagster[1]) + 16}.{dagster[2]}"  # 0.29.N goes with 1.13.N
    assert re.search(rf"^{re.escape(expected)}$", lock, re.MULTILINE), (
        f"docker/dagster/dagster.yaml stores runs in Postgres: requirements.lock needs {expected}"
    )


# ---------------------------------------------------------------------------
# Dagster instance and workspace


def test_dagster_instance_config_is_valid_postgres_storage_from_the_environment(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.instance.config import dagster_instance_config

    env = environment(rendered["services"]["dagster-daemon"])
    raw = yaml.safe_load((DAGSTER_DIR / "dagster.yaml").read_text())
    db = raw["storage"]["postgres"]["postgres_db"]
    referenced = {v["env"] for v in db.values() if isinstance(v, dict)}
    assert referenced == {
        "DAGSTER_POSTGRES_HOSTNAME", "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD",
    }
    assert referenced <= set(env), "the Dagster services must set every variable dagster.yaml reads"
    for name in referenced:
        monkeypatch.setenv(name, env[name])
    config, _ = dagster_instance_config(str(DAGSTER_DIR))
    assert set(config["storage"]) == {"postgres"}
    assert config["telemetry"] == {"enabled": False}


def test_dagster_instance_config_check_can_fail(tmp_path: Path) -> None:
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    text = (DAGSTER_DIR / "dagster.yaml").read_text().replace("postgres_db:", "postgres_database:")
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_dagster_postgres_storage_reads_the_compose_database(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster_postgres  # in requirements.lock (test_lock_file_has_dagsters_postgres_storage)
    from dagster._config import process_config

    env = environment(rendered["services"]["dagster-daemon"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    raw = yaml.safe_load((DAGSTER_DIR / "dagster.yaml").read_text())
    result = process_config(dagster_postgres.DagsterPostgresStorage.config_type(), raw["storage"]["postgres"])
    assert result.success, result.errors
    db = result.value["postgres_db"]
    postgres = environment(rendered["services"]["postgres"])
    assert db["hostname"] == "postgres" and db["port"] == 5432
    assert (db["db_name"], db["username"], db["password"]) == (
        postgres["POSTGRES_DB"], postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"],
    )
    # The URL's driver must be installed: SQLAlchemy imports it here, without connecting
    # (plain postgresql:// means psycopg 3 under SQLAlchemy 2.1, which is not in the lock).
    from dagster_postgres.utils import pg_url_from_config
    from sqlalchemy import create_engine

    create_engine(pg_url_from_config(result.value)).dispose()


def test_workspace_loads_the_projects_code_location() -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    path = DAGSTER_DIR / "workspace.yaml"
    workspace = ensure_workspace_config(yaml.safe_load(path.read_text()), str(path))
    (entry,) = workspace["load_from"]
    tool = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert entry["python_module"]["module_name"] == tool["module_name"] == "orchestration.definitions"
    assert entry["python_module"]["location_name"] == tool["code_location_name"]
    assert (PROJECT_ROOT / "orchestration" / "definitions.py").is_file()


# ---------------------------------------------------------------------------
# minio-init.sh, run against a stand-in `mc` that records its calls

STUB_MC = """#!/bin/sh
printf '%s\\n' "$*" >>"$MC_LOG"
case "$*" in
    "admin policy create "*) cp "$6" "$MC_LOG.policy.json" ;;
    "admin policy attach "*) exit "${MC_ATTACH_EXIT:-0}" ;;
    "admin user info "*) printf 'AccessKey: %s\\nPolicyName: %s\\n' "$5" "${MC_USER_POLICY:-}" ;;
esac
"""


InitRun = tuple[subprocess.CompletedProcess[str], list[str], Path]
"""The script's result, the `mc` calls it made, and where the stub saved the policy."""


@pytest.fixture
def run_init(tmp_path: Path) -> Callable[..., InitRun]:
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mc").write_text(STUB_MC)
    (bin_dir / "mc").chmod(0o755)
    log = tmp_path / "mc.log"

    def run(**overrides: str) -> InitRun:
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path), "MC_LOG": str(log),
            "MINIO_URL": "http://minio:9000", "MINIO_ROOT_USER": "root-user", "MINIO_ROOT_PASSWORD": "root-password",
            "LAKE_BUCKET": "lake", "LAKE_ACCESS_KEY_ID": "mesh-user", "LAKE_SECRET_ACCESS_KEY": "mesh-secret-1",
            **overrides,
        }
        log.unlink(missing_ok=True)
        result = subprocess.run([sh, str(MINIO_INIT)], env=env, capture_output=True, text=True, check=False)
        calls = log.read_text().splitlines() if log.exists() else []
        return result, calls, tmp_path / "mc.log.policy.json"

    return run


def test_minio_init_is_valid_posix_shell() -> None:
    assert subprocess.run(["sh", "-n", str(MINIO_INIT)], check=False).returncode == 0


def test_minio_init_creates_the_bucket_and_a_user_limited_to_it(run_init: Callable[..., InitRun]) -> None:
    result, calls, policy_file = run_init()
    assert result.returncode == 0, result.stderr
    assert calls[0] == "alias set mesh http://minio:9000 root-user root-password"
    assert calls[1] == "mb --ignore-existing mesh/lake"
    assert calls[2].startswith("admin policy create mesh datamesh-lake-lake ")
    assert calls[3] == "admin user add mesh mesh-user mesh-secret-1"
    assert calls[4] == "admin policy attach mesh datamesh-lake-lake --user mesh-user"
    (statement,) = json.loads(policy_file.read_text())["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:s3:::lake", "arn:aws:s3:::lake/*"]


def test_minio_init_accepts_a_policy_attached_before(run_init: Callable[..., InitRun]) -> None:
    result, calls, _ = run_init(MC_ATTACH_EXIT="1", MC_USER_POLICY="datamesh-lake-lake")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "admin user info mesh mesh-user"
    result, _, _ = run_init(MC_ATTACH_EXIT="1", MC_USER_POLICY="readonly")
    assert result.returncode != 0 and "cannot attach policy" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"LAKE_SECRET_ACCESS_KEY": ""}, "LAKE_SECRET_ACCESS_KEY is not set"),
        ({"MINIO_ROOT_PASSWORD": "change-me"}, "placeholder"),
        ({"LAKE_SECRET_ACCESS_KEY": "short"}, "at least 8 characters"),
        ({"LAKE_ACCESS_KEY_ID": "root-user"}, "must differ from MINIO_ROOT_USER"),
    ],
)
def test_minio_init_refuses_bad_credentials_before_touching_minio(
    run_init: Callable[..., InitRun], overrides: dict[str, str], message: str
) -> None:
    result, calls, _ = run_init(**overrides)
    assert result.returncode != 0 and message in result.stderr
    assert calls == []
