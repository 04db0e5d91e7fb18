"""docker-compose.yml, its Dockerfile, scripts and Dagster files agree with the spec, the policy and the project.

No Docker engine is needed: the compose file is checked against the Compose
Specification's JSON schema (docker/schema/compose-spec.json), against the
native stack's Trino configuration and pins, against the platform settings, the
rendered access policy (governance/generated) and what the provisioning job
(nativestack/provision.py) writes, and for credentials and network exposure.
The shell scripts of docker/ run against stand-ins of `mc`, `psql` and `caddy`
that record their calls. Each checker returns a list of problems; the
``*_can_fail`` tests feed it a broken copy to show it notices.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
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
from datamesh.policy import GENERATED_DIR, Policy, load_policy
from datamesh.policy.render import render_all
from datamesh.policy.storage import BUCKET, POSTGRES_ROLES_FILE, S3_POLICIES_DIR
from datamesh.policy.trino import GROUPS_FILE, RULES_FILE
from datamesh.settings import Settings
from nativestack import provision as prov

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
DOCKER_DIR = PROJECT_ROOT / "docker"
COMPOSE_SCHEMA = DOCKER_DIR / "schema" / "compose-spec.json"
DAGSTER_DIR = DOCKER_DIR / "dagster"
MINIO_INIT = DOCKER_DIR / "minio" / "minio-init.sh"
CATALOG_INIT = DOCKER_DIR / "iceberg-catalog" / "init.sh"
CATALOG_POLICY = DOCKER_DIR / "iceberg-catalog" / "apply-policy.sh"
PROXY_ENTRYPOINT = DOCKER_DIR / "proxy" / "entrypoint.sh"
CADDYFILE = DOCKER_DIR / "proxy" / "Caddyfile"
TRINO_ENTRYPOINT = DOCKER_DIR / "trino" / "entrypoint.sh"
TRINO_ETC = nativestack.STACK_DIR / "trino" / "etc"
TRINO_CONTAINER_ETC = PurePosixPath("/etc/trino")
GENERATED_SOURCE = "./" + GENERATED_DIR.relative_to(PROJECT_ROOT).as_posix()

SERVICES = {
    "provision", "minio", "minio-init", "trino", "iceberg-catalog", "iceberg-catalog-policy", "postgres",
    "dagster-webserver", "dagster-daemon", "dagster-proxy",
}
ONE_SHOT = {"provision", "minio-init", "iceberg-catalog-policy"}
DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
#: Each provisioned secrets volume, the provision job's folder for it, and the only services that read it.
SECRET_VOLUMES = {
    "trino-secrets": (prov.TRINO_DIR, {"trino"}),
    "platform-secrets": (prov.PLATFORM_DIR, set(DAGSTER_SERVICES)),
    "minio-secrets": (prov.MINIO_DIR, {"minio-init"}),
    "catalog-secrets": (prov.CATALOG_DIR, {"iceberg-catalog-policy"}),
}
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


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``, short or long syntax."""

    source: str
    target: PurePosixPath
    read_only: bool
    kind: str  # "bind" or "volume"


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    found = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, str):
            source, target, *mode = mount.split(":")
            read_only = "ro" in (mode[0].split(",") if mode else [])
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        else:
            source, target = str(mount.get("source", "")), mount["target"]
            read_only, kind = bool(mount.get("read_only")), str(mount.get("type", "volume"))
        found.append(Mount(source, PurePosixPath(target), read_only, kind))
    return found


def networks(service: Mapping[str, Any]) -> set[str]:
    if "network_mode" in service:
        return set()
    return set(service.get("networks") or ["default"])


def generated_name(source: str) -> str | None:
    """``./governance/generated/x`` -> ``x`` (``''`` for the folder itself); None for other sources."""
    if source == GENERATED_SOURCE:
        return ""
    return source.removeprefix(GENERATED_SOURCE + "/") if source.startswith(GENERATED_SOURCE + "/") else None


def in_rendered(name: str, files: Mapping[str, str]) -> bool:
    """Whether ``name`` (a file or folder below governance/generated) is among the rendered artefacts."""
    return name == "" or name in files or any(f.startswith(name.rstrip("/") + "/") for f in files)


def provisioned_path(compose: Mapping[str, Any], service: str, path: str, out: Path) -> Path | None:
    """Where ``path`` inside ``service`` is in the provision job's output ``out`` (via a shared volume)."""
    provision_targets = {m.source: m.target for m in mounts(compose["services"]["provision"]) if m.kind == "volume"}
    root = PurePosixPath(prov_out_target(compose))
    for mount in mounts(compose["services"][service]):
        inside = PurePosixPath(path)
        if mount.kind == "volume" and mount.source in provision_targets and inside.is_relative_to(mount.target):
            there = provision_targets[mount.source] / inside.relative_to(mount.target)
            return out / there.relative_to(root)
    return None


def prov_out_target(compose: Mapping[str, Any]) -> str:
    command = compose["services"]["provision"]["command"]
    return command[command.index("--out") + 1]


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
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def policy_files(policy: Policy) -> dict[str, str]:
    """What `mesh policy render` writes into governance/generated, rendered here."""
    return render_all(policy)


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory, policy: Policy) -> Path:
    """What the provision job writes (its --out folder), run here for the project's policy."""
    out = tmp_path_factory.mktemp("secrets")
    prov.provision(out, policy)
    return out


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


def reference_problems(compose: Mapping[str, Any], generated: Mapping[str, str]) -> list[str]:
    """Services, named volumes, networks and bind-mounted paths that are named but missing.

    Bind mounts from governance/generated are checked against ``generated`` (the rendered policy), so a
    checkout where `mesh policy render` has not run yet still proves the names right."""
    services = compose.get("services") or {}
    volumes = set(compose.get("volumes") or {})
    known_networks = set(compose.get("networks") or {}) | {"default"}
    problems = []
    for name, service in services.items():
        for dependency in service.get("depends_on") or []:
            if dependency not in services:
                problems.append(f"{name}: depends_on unknown service {dependency!r}")
        for network in service.get("networks") or []:
            if network not in known_networks:
                problems.append(f"{name}: unknown network {network!r}")
        for mount in mounts(service):
            if mount.kind == "volume" and mount.source not in volumes:
                problems.append(f"{name}: unknown named volume {mount.source!r}")
            if mount.kind != "bind":
                continue
            policy_file = generated_name(mount.source)
            if policy_file is not None:
                if not in_rendered(policy_file, generated):
                    problems.append(f"{name}: {mount.source!r} is not a file `mesh policy render` writes")
            elif not (PROJECT_ROOT / mount.source).exists():
                problems.append(f"{name}: bind-mounted path {mount.source!r} does not exist")
    return problems


def test_every_named_service_volume_and_network_exists(
    compose: dict[str, Any], policy_files: dict[str, str]
) -> None:
    assert reference_problems(compose, policy_files) == []


def test_reference_check_can_fail(compose: dict[str, Any], policy_files: dict[str, str]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["trino"]["depends_on"]["ghost"] = {"condition": "service_started"}
    broken["services"]["postgres"]["networks"] = ["frontend"]
    del broken["volumes"]["postgres-data"]
    broken["services"]["minio-init"]["volumes"][0]["source"] = "./docker/minio/missing.sh"
    broken["services"]["trino"]["volumes"][2]["source"] = f"{GENERATED_SOURCE}/trino-rule.json"
    problems = reference_problems(broken, policy_files)
    assert len(problems) == 5, problems


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


def test_start_order_waits_for_health_provisioning_and_policy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert dependency_problems(compose) == []
    done = {"condition": "service_completed_successfully"}
    healthy = {"condition": "service_healthy"}
    # Nothing that reads a provisioned secret starts before the provision job, which needs nothing.
    assert "depends_on" not in services["provision"]
    for name in ("minio-init", "iceberg-catalog-policy", "trino"):
        assert services[name]["depends_on"]["provision"] == done
    assert services["minio-init"]["depends_on"]["minio"] == healthy
    assert services["iceberg-catalog-policy"]["depends_on"]["iceberg-catalog"] == healthy
    # Trino reads the catalog as its own role and S3 as its own user: both exist before it starts.
    assert services["trino"]["depends_on"]["minio-init"] == done
    assert services["trino"]["depends_on"]["iceberg-catalog-policy"] == done
    for name in DAGSTER_SERVICES:
        assert services[name]["depends_on"] == {
            "postgres": healthy, "minio-init": done, "iceberg-catalog-policy": done, "trino": healthy,
        }
    assert services["dagster-proxy"]["depends_on"] == {"dagster-webserver": healthy}
    long_running = SERVICES - ONE_SHOT
    assert all("healthcheck" in services[name] for name in long_running)
    assert all(services[name]["restart"] == "no" for name in ONE_SHOT)
    assert {"minio-data", "postgres-data", "iceberg-catalog-data", "provision-state"} <= set(compose["volumes"])


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
    # A patch release, like the others (a "2" or "2.10" tag moves).
    assert re.fullmatch(r"caddy:\d+\.\d+\.\d+-alpine", compose["services"]["dagster-proxy"]["image"])


def test_the_platform_image_services_share_one_build(compose: dict[str, Any]) -> None:
    built = {name for name, s in compose["services"].items() if "build" in s}
    assert built == {"provision", *DAGSTER_SERVICES}
    assert len({compose["services"][n]["image"] for n in built}) == 1


# ---------------------------------------------------------------------------
# Networks and exposure


def network_problems(compose: Mapping[str, Any]) -> list[str]:
    """What can be reached from where: published ports, internal networks, the Dagster UI's only door."""
    services = compose["services"]
    declared = compose.get("networks") or {}
    internal = {name for name, spec in declared.items() if (spec or {}).get("internal") is True}
    problems = []
    for name, service in services.items():
        joined = networks(service)
        if service.get("ports"):
            if not joined - internal:
                problems.append(f"{name} publishes ports but is only on internal networks (Docker drops them)")
        elif joined - internal:
            problems.append(f"{name} publishes nothing but is on the routed network(s) {sorted(joined - internal)}")
    webserver, proxy = services["dagster-webserver"], services["dagster-proxy"]
    if webserver.get("ports") or webserver.get("expose"):
        problems.append("dagster-webserver publishes a port: only dagster-proxy may")
    shared = networks(webserver) & networks(proxy)
    if not shared or not shared <= internal:
        problems.append("dagster-proxy reaches dagster-webserver only over a network of their own, internal")
    for network in shared:
        others = {n for n, s in services.items() if network in networks(s)} - {"dagster-webserver", "dagster-proxy"}
        if others:
            problems.append(f"network {network} of the UI is shared with {sorted(others)}")
    if networks(webserver) & networks(proxy) - internal:
        problems.append("dagster-webserver is on the proxy's published network")
    return problems


def test_services_are_exposed_only_as_intended(compose: dict[str, Any]) -> None:
    assert network_problems(compose) == []
    services = compose["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"dagster-proxy", "trino", "minio"}
    assert networks(services["dagster-webserver"]) == {"backend", "dagster-ui"}
    assert networks(services["dagster-proxy"]) == {"edge", "dagster-ui"}
    assert {"backend", "dagster-ui"} <= {n for n, s in compose["networks"].items() if (s or {}).get("internal")}
    # The provision job needs no network at all.
    assert services["provision"]["network_mode"] == "none" and "networks" not in services["provision"]


def test_network_check_can_fail(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    web = broken["services"]["dagster-webserver"]
    web["ports"] = [{"target": 3000, "published": "3000", "host_ip": "127.0.0.1"}]
    web["networks"] = ["backend", "dagster-ui", "edge"]
    broken["services"]["postgres"]["networks"] = ["backend", "dagster-ui"]
    problems = network_problems(broken)
    assert any("dagster-webserver publishes a port" in p for p in problems)
    assert any("shared with ['postgres']" in p for p in problems)
    broken = copy.deepcopy(compose)
    broken["networks"]["dagster-ui"] = {}
    broken["services"]["trino"]["networks"] = ["backend"]
    problems = network_problems(broken)
    assert any("trino publishes ports" in p for p in problems)
    assert any("network of their own, internal" in p for p in problems)


def test_published_ports_stay_on_the_host_by_default(rendered: dict[str, Any]) -> None:
    published = [p for s in rendered["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)
    for name in ("postgres", "iceberg-catalog", "dagster-webserver", "dagster-daemon"):
        assert "ports" not in rendered["services"][name]


# ---------------------------------------------------------------------------
# The Dagster UI's proxy


def test_the_proxy_sends_every_ui_request_through_basic_auth_to_the_webserver(rendered: dict[str, Any]) -> None:
    proxy, web = rendered["services"]["dagster-proxy"], rendered["services"]["dagster-webserver"]
    env = environment(proxy)
    command = web["command"]
    upstream_port = command[command.index("--port") + 1]
    assert env["DAGSTER_UPSTREAM"] == f"dagster-webserver:{upstream_port}"
    text = CADDYFILE.read_text()
    site = re.search(r"^:(\d+) \{\n(.*?)^\}", text, re.MULTILINE | re.DOTALL)
    assert site, "the Caddyfile serves the UI on one :port site"
    assert [str(p["target"]) for p in proxy["ports"]] == [site[1]]
    body = site[2]
    assert re.search(r"basic_auth \{\s*\{\$DAGSTER_UI_USER\} \{\$DAGSTER_UI_PASSWORD_HASH\}\s*\}", body)
    assert body.index("basic_auth") < body.index("reverse_proxy {$DAGSTER_UPSTREAM}")
    assert "admin off" in text, "no Caddy admin API"
    # The health check is a loopback-only listener, not the published port, and it serves nothing else.
    health = proxy["healthcheck"]["test"]
    assert "http://127.0.0.1:3001/healthz" in health and site[1] != "3001"
    assert re.search(r"^http://127\.0\.0\.1:3001 \{\n\tbind 127\.0\.0\.1\n\trespond /healthz", text, re.MULTILINE)
    mounted = {(m.source, str(m.target), m.read_only) for m in mounts(proxy)}
    assert mounted == {("./docker/proxy/Caddyfile", "/etc/caddy/Caddyfile", True),
                       ("./docker/proxy/entrypoint.sh", "/opt/mesh/entrypoint.sh", True)}
    assert proxy["entrypoint"] == ["/bin/sh", "/opt/mesh/entrypoint.sh"]
    assert proxy["read_only"] is True and proxy["cap_drop"] == ["ALL"] and proxy["user"] != "0:0"


STUB_CADDY = """#!/bin/sh
printf '%s\\n' "$*" >>"$CADDY_LOG"
case "$1" in
    hash-password) cat >"$CADDY_LOG.stdin"; echo '$2a$14$stubbedhashstubbedhashstubbedhashstubbedhashstubbedhash' ;;
    run) env >"$CADDY_LOG.env" ;;
esac
"""


def run_with_stub(script: Path, tmp_path: Path, stub_name: str, stub: str, env: Mapping[str, str],
                  args: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``script`` with ``sh`` and a stand-in ``stub_name`` on PATH that logs to the returned path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / stub_name).write_text(stub)
    (bin_dir / stub_name).chmod(0o755)
    log = tmp_path / f"{stub_name}.log"
    for old in tmp_path.glob(f"{stub_name}.log*"):
        old.unlink()
    full = {"PATH": f"{bin_dir}:{os.environ['PATH']}", f"{stub_name.upper()}_LOG": str(log), **env}
    result = subprocess.run(["sh", str(script), *args], env=full, capture_output=True, text=True, check=False)
    return result, log


PROXY_ENV = {"DAGSTER_UI_USER": "operator", "DAGSTER_UI_PASSWORD": "a-long-ui-password-1234",
             "DAGSTER_UPSTREAM": "dagster-webserver:3000"}


def test_proxy_entrypoint_hashes_the_password_from_stdin_and_forgets_it(tmp_path: Path) -> None:
    result, log = run_with_stub(PROXY_ENTRYPOINT, tmp_path, "caddy", STUB_CADDY, PROXY_ENV)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls == ["hash-password --algorithm bcrypt", "run --config /etc/caddy/Caddyfile --adapter caddyfile"]
    assert (tmp_path / "caddy.log.stdin").read_text() == "a-long-ui-password-1234\n"
    env = (tmp_path / "caddy.log.env").read_text()
    assert "a-long-ui-password-1234" not in env and "DAGSTER_UI_PASSWORD=" not in env
    assert "DAGSTER_UI_PASSWORD_HASH=$2a$14$" in env
    assert "a-long-ui-password-1234" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DAGSTER_UI_PASSWORD": ""}, "DAGSTER_UI_PASSWORD is not set"),
        ({"DAGSTER_UI_PASSWORD": "change-me"}, "placeholder"),
        ({"DAGSTER_UI_USER": "change-me-operator"}, "placeholder"),
        ({"DAGSTER_UI_PASSWORD": "short-password"}, "at least 16 characters"),
        ({"DAGSTER_UI_USER": "ops admin"}, "only letters, digits"),
    ],
)
def test_proxy_entrypoint_refuses_bad_credentials_before_starting(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    result, log = run_with_stub(PROXY_ENTRYPOINT, tmp_path, "caddy", STUB_CADDY, {**PROXY_ENV, **overrides})
    assert result.returncode != 0 and message in result.stderr
    assert not log.exists()


# ---------------------------------------------------------------------------
# Trino: the native stack's release and configuration, the policy's files, its own identity


def trino_mount_problems(service: Mapping[str, Any], etc_dir: Path = TRINO_ETC) -> list[str]:
    """Whether the container sees exactly the files of ``etc_dir`` at /etc/trino, and every mount read-only."""
    found = mounts(service)
    problems = []
    etc_sources = []
    for mount in found:
        if not mount.read_only:
            problems.append(f"{mount.source} is mounted read-write at {mount.target}")
        source = (PROJECT_ROOT / mount.source).resolve() if mount.kind == "bind" else None
        if source is not None and source.is_relative_to(etc_dir.resolve()):
            etc_sources.append(source)
            if mount.target != TRINO_CONTAINER_ETC / source.relative_to(etc_dir.resolve()).as_posix():
                problems.append(f"{mount.source} is mounted at {mount.target}, not where Trino reads it")
        elif mount.target.is_relative_to(TRINO_CONTAINER_ETC):
            problems.append(f"{mount.source} is mounted at {mount.target} but is not part of {etc_dir}")
    for path in sorted(p for p in etc_dir.rglob("*") if p.is_file()):
        if not any(path.resolve().is_relative_to(source) for source in etc_sources):
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


def _properties(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in _without_comments(path).splitlines() if "=" in line)


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
    assert trino_mount_problems(writable) == ["./stack/trino/etc is mounted read-write at /etc/trino"]
    elsewhere = {"volumes": ["./stack/trino/etc:/opt/trino/etc:ro"]}
    assert len(trino_mount_problems(elsewhere)) == 1
    secrets_writable = {"volumes": ["./stack/trino/etc:/etc/trino:ro", "trino-secrets:/run/mesh/trino"]}
    assert trino_mount_problems(secrets_writable) == ["trino-secrets is mounted read-write at /run/mesh/trino"]


def test_trino_gets_every_variable_its_configuration_reads(rendered: dict[str, Any]) -> None:
    names = trino_env_names()
    assert {"TRINO_NODE_ID", "LAKE_S3_ENDPOINT", "LAKE_CATALOG_JDBC_URL", "TRINO_SHARED_SECRET"} <= names
    env = environment(rendered["services"]["trino"])
    from_file = set(prov.TRINO_ENV_VARIABLES)
    missing = sorted(names - set(env) - from_file)
    assert not missing, f"the trino service does not set {missing}, which stack/trino/etc reads"
    assert all(env[name] for name in names - from_file), "every Trino configuration variable needs a value"
    # The secrets come from the provisioned file only, and the file sets nothing the configuration ignores.
    assert not from_file & set(env), "secrets of Trino come from trino.env, never from the compose file"
    assert from_file <= names
    stale = sorted(k for k in env if k.startswith(("TRINO_", "LAKE_")) and k not in names)
    assert not stale, f"the trino service sets {stale}, which stack/trino/etc does not read"
    # The entrypoint takes exactly these names from the file.
    wanted = re.search(r'^wanted="([^"]*)"', TRINO_ENTRYPOINT.read_text(), re.MULTILINE)
    assert wanted and wanted[1].split() == list(prov.TRINO_ENV_VARIABLES)


def test_trino_container_is_a_single_https_coordinator_on_the_lake(rendered: dict[str, Any]) -> None:
    service = rendered["services"]["trino"]
    env = environment(service)
    config = _properties(TRINO_ETC / "config.properties")
    assert config["http-server.http.enabled"] == "false", "HTTPS only (the stack's shared configuration)"
    assert env["TRINO_COORDINATOR"] == env["TRINO_INCLUDE_COORDINATOR"] == "true"
    port = env["TRINO_HTTPS_PORT"]
    assert [str(p["target"]) for p in service["ports"]] == [port]
    assert str(prov.ComposeNames().trino_port) == port
    hosts = prov.ComposeNames().trino_cert_hosts
    discovery = re.fullmatch(r"https://([^:/]+):(\d+)", env["TRINO_DISCOVERY_URI"])
    assert discovery and discovery[1] in hosts and discovery[2] == port
    command = " ".join(service["command"])
    assert "--data-dir=" in command  # node.properties has no data dir; the native stack passes one too
    assert "node.bind-ip" not in command
    # Nodes talk HTTPS to each other: the announced address must be a name of the certificate.
    internal = re.search(r"-Dnode\.internal-address=(\S+)", command)
    assert internal and internal[1] in hosts and internal[1] == "trino"
    assert env["LAKE_CATALOG_JDBC_URL"] == "jdbc:postgresql://iceberg-catalog:5432/lake"
    health = " ".join(service["healthcheck"]["test"])
    assert f"https://localhost:{port}/v1/info" in health and f"--cacert {env['TRINO_CA_FILE']}" in health
    assert service["entrypoint"] == ["/bin/sh", "/opt/mesh/entrypoint.sh"]
    assert env["MESH_TRINO_ENV_FILE"].startswith("/run/mesh/trino/")


def test_trino_reads_the_rendered_policy_and_the_provisioned_files(
    compose: dict[str, Any], rendered: dict[str, Any], provisioned: Path, policy_files: dict[str, str]
) -> None:
    env = environment(rendered["services"]["trino"])
    by_target = {str(m.target): m for m in mounts(compose["services"]["trino"])}
    for variable, name in (("TRINO_ACCESS_RULES_FILE", RULES_FILE), ("TRINO_GROUPS_FILE", GROUPS_FILE)):
        mount = by_target[env[variable]]
        assert (mount.kind, generated_name(mount.source), mount.read_only) == ("bind", name, True)
        assert name in policy_files
    for variable in ("TRINO_KEYSTORE_FILE", "TRINO_CA_FILE", "TRINO_PASSWORD_FILE", "MESH_TRINO_ENV_FILE"):
        path = provisioned_path(compose, "trino", env[variable], provisioned)
        assert path is not None and path.is_file(), f"{variable}={env[variable]} is not a provisioned file"
    assert env["TRINO_ACCESS_RULES_FILE"] != env["TRINO_GROUPS_FILE"]


def test_trino_configuration_has_nothing_machine_specific() -> None:
    """The container uses the files unchanged: addresses and paths must come from ${ENV:...}."""
    for path in (p for p in TRINO_ETC.rglob("*") if p.is_file()):
        text = re.sub(r"\$\{ENV:[^}]*\}", "", _without_comments(path))
        for forbidden in ("127.0.0.1", "localhost", "node.bind-ip", "node.internal-address", "node.data-dir"):
            assert forbidden not in text, f"{path.relative_to(TRINO_ETC)} names {forbidden!r}"
        assert not re.search(r"=\s*/(home|root|tmp|usr|opt|var|run|etc)/", text), f"{path.name} names a host path"


def test_trino_acts_as_the_policys_read_only_engine_identity(
    compose: dict[str, Any], provisioned: Path, policy: Policy
) -> None:
    values = read_env_file(provisioned / prov.TRINO_DIR / prov.TRINO_ENV_FILE)
    assert set(values) == set(prov.TRINO_ENV_VARIABLES)
    engine = policy.engine
    assert values["LAKE_S3_ACCESS_KEY"] == values["LAKE_CATALOG_USER"] == engine.name
    grant = policy.grant(engine)
    assert grant.write == () and grant.catalog == "read", "Trino's own identity writes nothing"
    assert values["LAKE_S3_SECRET_KEY"] != values["LAKE_CATALOG_PASSWORD"]
    assert len(values["TRINO_SHARED_SECRET"]) >= 32
    # ... which minio-init creates with the engine's rendered (read-only) S3 policy.
    users = dict(line.split() for line in (provisioned / prov.MINIO_DIR / prov.MINIO_USERS_FILE).read_text().splitlines())
    assert users[engine.name] == values["LAKE_S3_SECRET_KEY"]


def test_trinos_certificate_names_the_service_and_chains_to_the_ca(provisioned: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (provisioned / prov.TRINO_DIR / prov.TRINO_KEYSTORE_FILE).read_bytes()
    assert b"PRIVATE KEY" in pem
    server = x509.load_pem_x509_certificates(pem)[0]
    ca = x509.load_pem_x509_certificate((provisioned / prov.TRINO_DIR / prov.CA_FILE).read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    named = set(names.get_values_for_type(x509.DNSName)) | {str(n) for n in names.get_values_for_type(x509.IPAddress)}
    assert set(prov.ComposeNames().trino_cert_hosts) <= named
    assert (provisioned / prov.PLATFORM_DIR / prov.CA_FILE).read_bytes() == ca.public_bytes(Encoding.PEM)


STUB_ENV = """#!/bin/sh
env >"$RECORD_LOG"
"""


def run_trino_entrypoint(tmp_path: Path, text: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    env_file = tmp_path / "trino.env"
    if text is not None:
        env_file.write_text(text)
    return run_with_stub(TRINO_ENTRYPOINT, tmp_path, "record", STUB_ENV,
                         {"MESH_TRINO_ENV_FILE": str(env_file)}, args=("record", "--data-dir=/data/trino"))


GOOD_TRINO_ENV = "".join(f"{name}=value-of-{name.lower()}_1\n" for name in prov.TRINO_ENV_VARIABLES)


def test_trino_entrypoint_exports_exactly_the_provisioned_values(tmp_path: Path, provisioned: Path) -> None:
    result, log = run_trino_entrypoint(tmp_path, "# a comment\n" + GOOD_TRINO_ENV)
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)
    for name in prov.TRINO_ENV_VARIABLES:
        assert env[name] == f"value-of-{name.lower()}_1"
    assert "MESH_TRINO_ENV_FILE" not in env
    assert result.stdout == result.stderr == ""
    # The file the provision job writes passes the same checks.
    real = (provisioned / prov.TRINO_DIR / prov.TRINO_ENV_FILE).read_text()
    result, _ = run_trino_entrypoint(tmp_path, real)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "is missing"),
        (GOOD_TRINO_ENV + "JAVA_TOOL_OPTIONS=-javaagent\n", "does not take"),
        (GOOD_TRINO_ENV.replace("LAKE_CATALOG_PASSWORD=value-of-lake_catalog_password_1\n", ""), "does not set"),
        (GOOD_TRINO_ENV.replace("value-of-trino_shared_secret_1", "a b"), "unexpected characters"),
    ],
)
def test_trino_entrypoint_refuses_a_bad_env_file(tmp_path: Path, text: str | None, message: str) -> None:
    result, log = run_trino_entrypoint(tmp_path, text)
    assert result.returncode != 0 and message in result.stderr
    assert not log.exists()


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


def test_env_example_documents_every_variable() -> None:
    """Every group of variables has a comment right above it; no credential has a usable value."""
    documented = False
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        if line.startswith("#"):
            documented = True
        elif not line.strip():
            documented = False
        else:
            assert documented, f".env.example:{number}: {line.split('=')[0]} has no comment above its group"
    for key, value in read_env_file(ENV_EXAMPLE).items():
        if SECRET_KEY.search(key) or key in ("MINIO_ROOT_USER", "DAGSTER_UI_USER"):
            assert value.startswith(PLACEHOLDER), f".env.example holds a real-looking value for {key}"


def secret_problems(compose: Mapping[str, Any]) -> list[str]:
    """Every credential in a service environment is exactly one required ``${VAR:?message}``.

    A ``*_FILE`` variable names a file instead: it must lie in one of the service's read-only mounts."""
    problems = []
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if not SECRET_KEY.search(key):
                continue
            if key.endswith("_FILE") and value.startswith("/"):
                if not any(PurePosixPath(value).is_relative_to(m.target) and m.read_only for m in mounts(service)):
                    problems.append(f"{name}: {key}={value} is not in a read-only mount of the service")
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
        "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "DAGSTER_POSTGRES_PASSWORD", "ICEBERG_POSTGRES_PASSWORD",
        "DAGSTER_UI_USER", "DAGSTER_UI_PASSWORD",
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
    broken["services"]["trino"]["environment"]["LAKE_S3_SECRET_KEY"] = "x${MINIO_ROOT_PASSWORD:?set it}"
    broken["services"]["trino"]["environment"]["TRINO_PASSWORD_FILE"] = "/tmp/password.db"
    assert len(secret_problems(broken)) == 5


def test_a_missing_credential_stops_interpolation(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    without = {k: v for k, v in env_example.items() if k != "DAGSTER_UI_PASSWORD"}
    with pytest.raises(KeyError, match="DAGSTER_UI_PASSWORD"):
        render(compose, without)


def _services_using(compose: Mapping[str, Any], variable: str) -> list[str]:
    return sorted(n for n, s in compose["services"].items()
                  if any(ref.name == variable for value in strings(s) for ref in parse_refs(value)))


def test_each_administrator_password_goes_only_where_it_is_needed(compose: dict[str, Any]) -> None:
    # .env.example's placeholders are all alike, so this looks at the variables, not their values.
    assert _services_using(compose, "MINIO_ROOT_USER") == ["minio", "minio-init"]
    assert _services_using(compose, "MINIO_ROOT_PASSWORD") == ["minio", "minio-init"]
    assert _services_using(compose, "ICEBERG_POSTGRES_PASSWORD") == ["iceberg-catalog", "iceberg-catalog-policy"]
    assert _services_using(compose, "DAGSTER_POSTGRES_PASSWORD") == ["dagster-daemon", "dagster-webserver",
                                                                     "postgres"]
    assert _services_using(compose, "DAGSTER_UI_PASSWORD") == ["dagster-proxy"]


def test_no_service_gets_a_lake_or_catalog_credential_from_the_environment(rendered: dict[str, Any]) -> None:
    """S3 keys, catalog URIs and Trino logins come from the provisioned files, chosen by MESH_ACTOR."""
    forbidden = {"MESH_S3_ACCESS_KEY_ID", "MESH_S3_SECRET_ACCESS_KEY", "MESH_ICEBERG_CATALOG_URI", "MESH_TRINO_USER",
                 "MESH_TRINO_PASSWORD", *prov.TRINO_ENV_VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for name, service in rendered["services"].items():
        assert not forbidden & set(environment(service)), f"{name} sets {sorted(forbidden & set(environment(service)))}"


# ---------------------------------------------------------------------------
# The rendered policy and the provisioned secrets


def test_the_rendered_policy_is_mounted_read_only_where_it_is_enforced(
    compose: dict[str, Any], policy_files: dict[str, str]
) -> None:
    used: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for mount in mounts(service):
            policy_file = generated_name(mount.source)
            if policy_file is None:
                continue
            assert mount.kind == "bind" and mount.read_only, f"{name} mounts {mount.source} writable"
            assert in_rendered(policy_file, policy_files), f"{name}: {mount.source} is not rendered"
            used.setdefault(policy_file, set()).add(name)
    assert used == {
        "": {"provision"},  # to refuse a stack whose rendered files drifted from the image's contracts
        S3_POLICIES_DIR: {"minio-init"},
        POSTGRES_ROLES_FILE: {"iceberg-catalog-policy"},
        RULES_FILE: {"trino"},
        GROUPS_FILE: {"trino"},
    }
    command = compose["services"]["provision"]["command"]
    (root,) = [m for m in mounts(compose["services"]["provision"]) if generated_name(m.source) == ""]
    assert command[command.index("--policy-dir") + 1] == str(root.target)
    # The rendered S3 policies are for the bucket the stack creates and the platform uses.
    init = environment(compose["services"]["minio-init"])
    assert init["LAKE_BUCKET"] == BUCKET
    assert environment(compose["services"]["dagster-daemon"])["MESH_LAKE_URL"] == f"s3://{BUCKET}/"
    for name, text in policy_files.items():
        if name.startswith(S3_POLICIES_DIR + "/"):
            resources = [r for s in json.loads(text)["Statement"] for r in s["Resource"]]
            assert all(r.startswith(f"arn:aws:s3:::{BUCKET}") for r in resources), name


def test_each_secrets_volume_reaches_only_its_consumer_read_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    provision_mounts = {m.source: m for m in mounts(services["provision"]) if m.kind == "volume"}
    out = PurePosixPath(prov_out_target(compose))
    assert provision_mounts["provision-state"].target == out
    for volume, (folder, consumers) in SECRET_VOLUMES.items():
        assert provision_mounts[volume].target == out / folder and not provision_mounts[volume].read_only
        readers = {n for n, s in services.items() if n != "provision" and any(m.source == volume for m in mounts(s))}
        assert readers == consumers, f"{volume} is mounted by {sorted(readers)}"
        for name in consumers:
            (mount,) = [m for m in mounts(services[name]) if m.source == volume]
            assert mount.read_only, f"{name} mounts {volume} writable"
    assert set(provision_mounts) == {"provision-state", *SECRET_VOLUMES}
    assert [n for n, s in services.items() if any(m.source == "provision-state" for m in mounts(s))] == ["provision"]
    assert services["provision"]["entrypoint"] == ["python", "-m", "nativestack.provision"]
    # The files go to the user the platform image runs as (the Dockerfile's), which is also the trino
    # image's user (uid 1000, trinodb/trino); minio-init and the catalog job read as root.
    command = services["provision"]["command"]
    uid = re.search(r"--uid (\d+)", DOCKERFILE.read_text())
    assert uid and command[command.index("--owner") + 1] == f"{uid[1]}:{uid[1]}" == "1000:1000"


def test_every_provisioned_path_a_service_reads_exists(
    compose: dict[str, Any], rendered: dict[str, Any], provisioned: Path
) -> None:
    reads = {
        "minio-init": ["MESH_S3_USERS_FILE"],
        "iceberg-catalog-policy": ["MESH_CATALOG_VERIFIERS"],
        "dagster-webserver": ["MESH_CREDENTIALS_FILE", "MESH_TRINO_CA_FILE"],
        "dagster-daemon": ["MESH_CREDENTIALS_FILE", "MESH_TRINO_CA_FILE"],
    }
    for service, variables in reads.items():
        env = environment(rendered["services"][service])
        for variable in variables:
            path = provisioned_path(compose, service, env[variable], provisioned)
            assert path is not None and path.is_file(), f"{service}: {variable}={env[variable]} is not provisioned"
    ca = environment(rendered["services"]["dagster-daemon"])["MESH_TRINO_CA_FILE"]
    assert ca == f"{prov.ComposeNames().platform_mount}/{prov.CA_FILE}"


def test_provisioned_files_are_private(provisioned: Path) -> None:
    for path in (provisioned, *provisioned.rglob("*")):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path} is {mode:04o}"
        elif path.name == prov.CA_FILE:
            assert mode == 0o644
        else:
            assert mode == 0o600, f"{path} is {mode:04o}"


def test_provision_hands_the_files_to_the_services_user(tmp_path: Path, policy: Policy) -> None:
    if os.geteuid() != 0:
        with pytest.raises(prov.StackError, match="needs root"):
            prov.provision(tmp_path / "out", policy, owner=(os.geteuid() + 1, os.getegid()))
        return
    out = tmp_path / "out"
    prov.provision(out, policy, owner=(1000, 1000))
    assert {(p.stat().st_uid, p.stat().st_gid) for p in (out, *out.rglob("*"))} == {(1000, 1000)}


def test_provision_is_idempotent_and_prints_no_secret(
    tmp_path: Path, policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "secrets"
    assert prov.main(["--out", str(out)]) == 0

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first = snapshot()
    assert prov.main(["--out", str(out)]) == 0
    assert snapshot() == first, "a second run must keep every secret and file"
    printed = capsys.readouterr()
    secrets = json.loads((out / prov.STATE_DIR / "credentials.json").read_text())["principals"]
    for entry in secrets.values():
        for value in entry.values():
            assert value not in printed.out + printed.err
    # Explicit requests print the public CA and one login's password, and nothing else.
    assert prov.main(["ca", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN CERTIFICATE-----")
    assert prov.main(["password", "alice", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == secrets["alice"]["trino_password"]
    assert prov.main(["password", "mallory", "--out", str(out)]) == 1
    assert "No login 'mallory'" in capsys.readouterr().err


def test_provision_refuses_a_rendered_policy_that_drifted(
    tmp_path: Path, policy_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rendered_dir = tmp_path / "generated"
    for name, text in policy_files.items():
        (rendered_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (rendered_dir / name).write_text(text)
    assert prov.main(["--out", str(tmp_path / "ok"), "--policy-dir", str(rendered_dir)]) == 0
    (rendered_dir / RULES_FILE).write_text("{}\n")
    assert prov.main(["--out", str(tmp_path / "drifted"), "--policy-dir", str(rendered_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{RULES_FILE}: differs" in err and "mesh policy render" in err
    assert not (tmp_path / "drifted").exists()


def test_dagster_services_configure_the_platform_for_the_stack(
    compose: dict[str, Any], rendered: dict[str, Any], provisioned: Path, policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.engine import make_url

    services = rendered["services"]
    trino_env = environment(services["trino"])
    fields = {f"MESH_{name.upper()}" for name in Settings.model_fields}
    acting = prov.actors(policy)
    catalog = environment(services["iceberg-catalog-policy"])
    for name in DAGSTER_SERVICES:
        env = environment(services[name])
        unknown = sorted(k for k in env if k.startswith("MESH_") and k not in fields)
        assert not unknown, f"{name}: {unknown} are not platform settings (datamesh/settings.py)"
        for key in list(os.environ):
            if key.startswith("MESH_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for key in ("MESH_CREDENTIALS_FILE", "MESH_TRINO_CA_FILE"):  # the container's path, provisioned here
            path = provisioned_path(compose, name, env[key], provisioned)
            assert path is not None
            monkeypatch.setenv(key, str(path))
        for actor, principal in acting.items():
            settings = Settings(_env_file=None, actor=actor) if actor != env["MESH_ACTOR"] else Settings(_env_file=None)
            assert settings.is_s3 and settings.lake_url == f"s3://{environment(services['minio-init'])['LAKE_BUCKET']}/"
            assert settings.s3_endpoint_url == trino_env["LAKE_S3_ENDPOINT"] == "http://minio:9000"
            assert settings.s3_region == trino_env["LAKE_S3_REGION"]
            assert settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None
            assert settings.s3_access_key_id.get_secret_value() == principal, f"{actor} acts with its own S3 user"
            assert settings.trino_user == principal and settings.trino_password is not None
            assert settings.trino_host == "trino" and str(settings.trino_port) == trino_env["TRINO_HTTPS_PORT"]
            assert settings.trino_scheme == "https" and settings.trino_ca_file is not None
            assert settings.trino_ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
            assert settings.iceberg_catalog_uri is not None
            url = make_url(settings.iceberg_catalog_uri.get_secret_value())
            assert url.drivername == "postgresql+psycopg2"  # psycopg2 is in requirements.lock
            assert (url.host, url.port, url.database, url.username) == (
                catalog["PGHOST"], int(catalog["PGPORT"]), catalog["PGDATABASE"], principal,
            )
        assert env["MESH_ACTOR"] == "platform" and acting["platform"] == policy.platform.name
        assert (TRINO_ETC / "catalog" / f"{env['MESH_TRINO_CATALOG']}.properties").is_file()
        assert env["DAGSTER_POSTGRES_HOSTNAME"] in services
        postgres = environment(services["postgres"])
        assert env["DAGSTER_POSTGRES_PASSWORD"] == postgres["POSTGRES_PASSWORD"]
        assert env["DAGSTER_POSTGRES_USER"] == postgres["POSTGRES_USER"]
        assert env["DAGSTER_POSTGRES_DB"] == postgres["POSTGRES_DB"]


def test_every_s3_identity_is_a_non_root_user_of_the_policy(
    provisioned: Path, policy: Policy, policy_files: dict[str, str], env_example: dict[str, str]
) -> None:
    services = {p.name for p in policy.service_users()}
    users = dict(line.split() for line in (provisioned / prov.MINIO_DIR / prov.MINIO_USERS_FILE).read_text().splitlines())
    assert set(users) == services
    assert env_example["MINIO_ROOT_USER"] not in users
    assert {f"{S3_POLICIES_DIR}/{n}.json" for n in users} == {f for f in policy_files if f.startswith(S3_POLICIES_DIR)}
    identities = json.loads((provisioned / prov.PLATFORM_DIR / prov.IDENTITIES_FILE).read_text())["identities"]
    assert set(identities) == set(prov.actors(policy))
    for entry in identities.values():
        key = entry["s3_access_key_id"]
        assert key in services and users[key] == entry["s3_secret_access_key"]
    # The analyst's identity reads only; no one but the platform writes everywhere.
    assert policy.grant(identities["analyst"]["s3_access_key_id"]).write == ()
    assert policy.grant(identities["publisher:crm"]["s3_access_key_id"]).write[0] == "products/crm/"


# ---------------------------------------------------------------------------
# The Iceberg catalog database


def test_iceberg_catalog_is_one_database_for_trino_pyiceberg_and_the_platform(
    compose: dict[str, Any], rendered: dict[str, Any]
) -> None:
    services = rendered["services"]
    catalog = environment(services["iceberg-catalog"])
    apply = environment(services["iceberg-catalog-policy"])
    trino = environment(services["trino"])
    owner, database = catalog["ICEBERG_CATALOG_OWNER"], catalog["ICEBERG_CATALOG_DB"]
    assert owner != catalog["POSTGRES_USER"], "the catalog's owner is not the superuser"
    assert (apply["PGHOST"], apply["PGPORT"], apply["PGDATABASE"]) == ("iceberg-catalog", "5432", database)
    assert apply["PGUSER"] == catalog["POSTGRES_USER"] and apply["PGPASSWORD"] == catalog["POSTGRES_PASSWORD"]
    assert apply["ICEBERG_CATALOG_OWNER"] == owner
    assert trino["LAKE_CATALOG_JDBC_URL"] == f"jdbc:postgresql://iceberg-catalog:5432/{database}"
    names = prov.ComposeNames()
    assert (names.catalog_host, names.catalog_port, names.catalog_database) == ("iceberg-catalog", 5432, database)
    warehouse = f"s3://{BUCKET}/{nativestack.WAREHOUSE_PREFIX}"
    assert trino["LAKE_WAREHOUSE_DIR"] == warehouse
    # The name pyiceberg creates the tables under is the one Trino reads them with.
    properties = _properties(TRINO_ETC / "catalog" / "lake.properties")
    assert properties["iceberg.jdbc-catalog.catalog-name"] == nativestack.ICEBERG_CATALOG_NAME
    init = [m for m in mounts(compose["services"]["iceberg-catalog"]) if m.kind == "bind"]
    assert [(m.source, str(m.target), m.read_only) for m in init] == [
        ("./docker/iceberg-catalog/init.sh", "/docker-entrypoint-initdb.d/10-catalog-owner.sh", True)
    ]
    assert "-h" in services["iceberg-catalog"]["healthcheck"]["test"], "pg_isready over TCP, not the init socket"
    policy_job = {str(m.target): m for m in mounts(compose["services"]["iceberg-catalog-policy"])}
    assert generated_name(policy_job[apply["MESH_ROLES_SQL"]].source) == POSTGRES_ROLES_FILE
    assert services["iceberg-catalog-policy"]["image"] == services["iceberg-catalog"]["image"]


STUB_PSQL = """#!/bin/sh
printf '%s\\n' "$*" >>"$PSQL_LOG"
cat >>"$PSQL_LOG.stdin"
env >"$PSQL_LOG.env"
"""


def run_catalog_init(tmp_path: Path, **overrides: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    env = {"POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "ICEBERG_CATALOG_OWNER": "lake",
           "ICEBERG_CATALOG_DB": "lake", **overrides}
    return run_with_stub(CATALOG_INIT, tmp_path, "psql", STUB_PSQL, env)


@pytest.mark.parametrize("script", [CATALOG_INIT, CATALOG_POLICY, MINIO_INIT, PROXY_ENTRYPOINT, TRINO_ENTRYPOINT])
def test_scripts_are_valid_posix_shell(script: Path) -> None:
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    assert "set -x" not in script.read_text(), "tracing would print secrets"


def test_catalog_init_creates_an_owner_that_cannot_log_in(tmp_path: Path) -> None:
    result, log = run_catalog_init(tmp_path)
    assert result.returncode == 0, result.stderr
    args = log.read_text()
    assert "-v ON_ERROR_STOP=1" in args and "--username postgres --dbname postgres" in args
    assert "-v role=lake -v db=lake" in args
    script = (tmp_path / "psql.log.stdin").read_text()
    assert 'CREATE ROLE :"role" WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION' in script
    assert "PASSWORD" not in script
    assert 'CREATE DATABASE :"db" OWNER :"role"' in script


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ICEBERG_CATALOG_OWNER": ""}, "ICEBERG_CATALOG_OWNER is not set"),
        ({"ICEBERG_CATALOG_DB": ""}, "ICEBERG_CATALOG_DB is not set"),
        ({"ICEBERG_CATALOG_OWNER": "postgres"}, "must differ from POSTGRES_USER"),
    ],
)
def test_catalog_init_refuses_bad_settings_before_calling_psql(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    result, log = run_catalog_init(tmp_path, **overrides)
    assert result.returncode != 0 and message in result.stderr
    assert not log.exists()


def run_catalog_policy(tmp_path: Path, provisioned: Path, policy_files: dict[str, str],
                       **overrides: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    roles = tmp_path / "postgres-roles.sql"
    roles.write_text(policy_files[POSTGRES_ROLES_FILE])
    env = {"PGHOST": "iceberg-catalog", "PGUSER": "postgres", "PGDATABASE": "lake",
           "PGPASSWORD": "superuser-password-1", "ICEBERG_CATALOG_OWNER": "lake", "MESH_ROLES_SQL": str(roles),
           "MESH_CATALOG_VERIFIERS": str(provisioned / prov.CATALOG_DIR / prov.CATALOG_PASSWORDS_FILE), **overrides}
    return run_with_stub(CATALOG_POLICY, tmp_path, "psql", STUB_PSQL, env)


def test_catalog_policy_applies_the_roles_then_the_verifiers(
    tmp_path: Path, provisioned: Path, policy_files: dict[str, str], policy: Policy
) -> None:
    result, log = run_catalog_policy(tmp_path, provisioned, policy_files)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    verifiers = provisioned / prov.CATALOG_DIR / prov.CATALOG_PASSWORDS_FILE
    assert calls == [
        f"--no-psqlrc --quiet -v ON_ERROR_STOP=1 -f {tmp_path / 'postgres-roles.sql'}",
        f"--no-psqlrc --quiet -v ON_ERROR_STOP=1 -f {verifiers}",
        "--no-psqlrc --quiet -v ON_ERROR_STOP=1 -v owner=lake",
    ]
    assert 'ALTER ROLE :"owner" WITH NOLOGIN PASSWORD NULL;' in (tmp_path / "psql.log.stdin").read_text()
    assert "superuser-password-1" not in " ".join(calls) + result.stdout + result.stderr
    # Every service user's role gets a SCRAM verifier, and no password of the provisioning appears in it.
    text = verifiers.read_text()
    assert {m for m in re.findall(r'ALTER ROLE "([a-z0-9_]+)"', text)} == {p.name for p in policy.service_users()}
    state = json.loads((provisioned / prov.STATE_DIR / "credentials.json").read_text())["principals"]
    assert not any(v["pg_password"] in text for v in state.values() if "pg_password" in v)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"PGPASSWORD": "change-me"}, "placeholder"),
        ({"PGPASSWORD": ""}, "PGPASSWORD is not set"),
        ({"MESH_ROLES_SQL": "/nonexistent/postgres-roles.sql"}, "mesh policy render"),
        ({"MESH_CATALOG_VERIFIERS": "/nonexistent/passwords.sql"}, "provision job"),
    ],
)
def test_catalog_policy_refuses_bad_settings_before_calling_psql(
    tmp_path: Path, provisioned: Path, policy_files: dict[str, str], overrides: dict[str, str], message: str
) -> None:
    result, log = run_catalog_policy(tmp_path, provisioned, policy_files, **overrides)
    assert result.returncode != 0 and message in result.stderr
    assert not log.exists()


def test_catalog_policy_refuses_a_plaintext_password(
    tmp_path: Path, provisioned: Path, policy_files: dict[str, str]
) -> None:
    forged = tmp_path / "passwords.sql"
    forged.write_text("BEGIN;\nALTER ROLE \"svc_crm\" WITH LOGIN PASSWORD 'hunter2hunter2';\nCOMMIT;\n")
    result, log = run_catalog_policy(tmp_path, provisioned, policy_files, MESH_CATALOG_VERIFIERS=str(forged))
    assert result.returncode != 0 and "not a SCRAM verifier" in result.stderr
    assert "hunter2" not in result.stderr and not log.exists()


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
        assert any(str(m.target) == f"{home[1]}/storage" for m in mounts(service))
    # The provision job runs `python -m nativestack.provision` from the image's working directory.
    assert (PROJECT_ROOT / "nativestack" / "provision.py").is_file()


def test_build_context_excludes_secrets_but_not_what_the_image_copies() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for secret in (".env", ".venv", ".git"):
        assert secret in patterns, f".dockerignore must exclude {secret}"
    sources = ["requirements.lock", "pyproject.toml", "datamesh", "orchestration", "ml", "data_products", "sql",
               "nativestack", "governance"]
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
        if not name.startswith("MESH_"):
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
    "alias set "* | "admin user add "*) cat >>"$MC_LOG.stdin" ;;
    "admin policy create "*) cp "$6" "$MC_LOG.policy-$5.json" ;;
    "admin policy attach "*) exit "${MC_ATTACH_EXIT:-0}" ;;
    "admin user info "*) printf 'AccessKey: %s\\nPolicyName: %s\\n' "$5" "${MC_USER_POLICY:-}" ;;
    "admin user list "*) printf '%b' "${MC_USER_LIST:-}" ;;
esac
"""


InitRun = tuple[subprocess.CompletedProcess[str], list[str], Path]
"""The script's result, the `mc` calls it made, and the folder where the stub saved what it was given."""


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
    policies = tmp_path / "s3-policies"
    policies.mkdir()
    for name in ("mesh_platform", "svc_crm", "trino"):
        (policies / f"{name}.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [], "n": name}))
    users = tmp_path / "users"
    users.write_text("mesh_platform platform-secret-0123456789\nsvc_crm crm-secret-0123456789abc\n"
                     "trino engine-secret-0123456789ab\n")

    def run(users_text: str | None = None, **overrides: str) -> InitRun:
        if users_text is not None:
            users.write_text(users_text)
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path), "MC_LOG": str(log),
            "MINIO_URL": "http://minio:9000", "MINIO_ROOT_USER": "root-user",
            "MINIO_ROOT_PASSWORD": "root-password-123", "LAKE_BUCKET": "lake",
            "MESH_S3_USERS_FILE": str(users), "MESH_S3_POLICIES_DIR": str(policies), **overrides,
        }
        for old in tmp_path.glob("mc.log*"):
            old.unlink()
        result = subprocess.run([sh, str(MINIO_INIT)], env=env, capture_output=True, text=True, check=False)
        calls = log.read_text().splitlines() if log.exists() else []
        return result, calls, tmp_path

    return run


def test_minio_init_creates_one_user_per_service_user_with_its_rendered_policy(
    run_init: Callable[..., InitRun],
) -> None:
    result, calls, saved = run_init()
    assert result.returncode == 0, result.stderr
    assert calls[:2] == ["alias set mesh http://minio:9000", "mb --ignore-existing mesh/lake"]
    users = ("mesh_platform", "svc_crm", "trino")
    expected = []
    for user in users:
        expected += [f"admin policy create mesh mesh-{user} {saved / 's3-policies' / user}.json",
                     "admin user add mesh", f"admin policy attach mesh mesh-{user} --user {user}"]
    assert calls[2:-1] == expected
    assert calls[-1] == "admin user list mesh"
    for user in users:
        assert json.loads((saved / f"mc.log.policy-mesh-{user}.json").read_text())["n"] == user
    # Keys only ever on stdin: the root login first, then each user's.
    assert (saved / "mc.log.stdin").read_text().splitlines() == [
        "root-user", "root-password-123", "mesh_platform", "platform-secret-0123456789",
        "svc_crm", "crm-secret-0123456789abc", "trino", "engine-secret-0123456789ab",
    ]
    everything = "\n".join(calls) + result.stdout + result.stderr
    for secret in ("root-password-123", "platform-secret", "crm-secret", "engine-secret"):
        assert secret not in everything
    assert "mesh_platform svc_crm trino" in result.stdout


def test_minio_init_removes_users_the_policy_dropped(run_init: Callable[..., InitRun]) -> None:
    listing = ("enabled    mesh_platform    mesh-mesh_platform\\nenabled    svc_gone    mesh-svc_gone\\n"
               "enabled    someone    readwrite\\n")
    result, calls, _ = run_init(MC_USER_LIST=listing)
    assert result.returncode == 0, result.stderr
    removals = [c for c in calls if c.startswith("admin user remove")]
    assert removals == ["admin user remove mesh svc_gone"], "only users this script made are removed"
    assert "removed: svc_gone" in result.stdout


def test_minio_init_accepts_a_policy_attached_before(run_init: Callable[..., InitRun]) -> None:
    result, calls, _ = run_init(MC_ATTACH_EXIT="1", MC_USER_POLICY="mesh-mesh_platform,mesh-svc_crm,mesh-trino")
    assert result.returncode == 0, result.stderr
    assert "admin user info mesh trino" in calls
    result, _, _ = run_init(MC_ATTACH_EXIT="1", MC_USER_POLICY="readonly")
    assert result.returncode != 0 and "cannot attach policy" in result.stderr


@pytest.mark.parametrize(
    ("users_text", "overrides", "message"),
    [
        (None, {"MINIO_ROOT_PASSWORD": "change-me"}, "placeholder"),
        (None, {"MINIO_ROOT_PASSWORD": "short"}, "at least 12 characters"),
        (None, {"MESH_S3_USERS_FILE": "/nonexistent/users"}, "provision job"),
        (None, {"MESH_S3_POLICIES_DIR": "/nonexistent"}, "mesh policy render"),
        ("mesh_platform platform-secret-0123456789\nsvc_crm crm-secret-0123456789abc\n", {}, "no generated secret"),
        ("svc_new new-secret-0123456789abcd\n", {}, "no rendered S3 policy for 'svc_new'"),
        ("svc_crm bad;secret-0123456789\n", {}, "unexpected characters"),
        ("svc_crm short\n", {}, "shorter than 16"),
        ("root-user root-secret-0123456789\n", {}, "not a service user name"),
        ("svc_crm a-secret-0123456789abcd extra\n", {}, "more than"),
        (None, {"MINIO_ROOT_USER": "svc_crm"}, "must differ from MINIO_ROOT_USER"),
    ],
)
def test_minio_init_refuses_bad_input_before_touching_minio(
    run_init: Callable[..., InitRun], users_text: str | None, overrides: dict[str, str], message: str
) -> None:
    result, calls, _ = run_init(users_text, **overrides)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert calls == []
    assert "0123456789" not in result.stderr
