"""The Docker deployment, checked by parsing (no Docker engine needed).

docker-compose.yml, the Dockerfile, dagster.yaml and the two workspace files must agree on
service names, ports, paths and environment variables; dagster.yaml must pass Dagster's own
instance-config validation with the URL docker-compose gives it; and no credential may be
written into any of them.
"""

from __future__ import annotations

import importlib
import json
import posixpath
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from breakout_assets.settings import PROJECT_ROOT, load_settings

ROOT = PROJECT_ROOT
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DAGSTER_YAML = ROOT / "dagster.yaml"
WORKSPACE = ROOT / "workspace.yaml"
WORKSPACE_DOCKER = ROOT / "workspace.docker.yaml"

DAGSTER_SERVICES = ("user_code", "webserver", "daemon")
ALL_SERVICES = {"postgres", *DAGSTER_SERVICES}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)
# A host environment as a user would have it: only the one required variable set.
HOST_ENV = {"POSTGRES_PASSWORD": "s3cret-test-value"}


# --- helpers: YAML -----------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def dagster_config() -> dict:
    return load_yaml(DAGSTER_YAML)


def env_references(node: Any) -> Iterator[str]:
    """Names in every `{env: NAME}` of a Dagster config (how StringSource reads a variable)."""
    if isinstance(node, Mapping):
        if set(node) == {"env"} and isinstance(node["env"], str):
            yield node["env"]
            return
        for value in node.values():
            yield from env_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from env_references(value)


# --- helpers: docker-compose -------------------------------------------------------------------


class MissingVariable(LookupError):
    pass


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR:?error}, ${VAR:+x}."""

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        current = env.get(name)
        op = match["op"]
        if op is None:
            return current or ""
        missing = current is None or (op.startswith(":") and current == "")
        if op.endswith("-"):
            return match["arg"] if missing else current
        if op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {match['arg']}")
            return current
        return "" if missing else match["arg"]  # "+"

    return _INTERPOLATION.sub(substitute, value)


def service_env(service: Mapping) -> dict[str, str | None]:
    """A service's `environment:` as a dict (None: passed through from the host, no value)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = {}
        for item in env:
            name, sep, value = str(item).partition("=")
            pairs[name] = value if sep else None
        return pairs
    return {name: (None if value is None else str(value)) for name, value in env.items()}


def resolved_env(service: Mapping, host: Mapping[str, str] = HOST_ENV) -> dict[str, str]:
    """The environment the container gets: values interpolated, pass-throughs from `host`."""
    env = {}
    for name, value in service_env(service).items():
        if value is None:
            if name in host:
                env[name] = host[name]
        else:
            env[name] = interpolate(value, host)
    return env


def command_args(service: Mapping) -> list[str]:
    command = service["command"]
    return list(map(str, command)) if isinstance(command, list) else shlex.split(command)


def option(args: list[str], *names: str) -> str:
    for i, arg in enumerate(args):
        if arg in names:
            return args[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {args}")


def published_ports(service: Mapping, host: Mapping[str, str] = HOST_ENV):
    """(host_ip, published, target) for each `ports:` entry (short or long syntax)."""
    for entry in service.get("ports") or []:
        if isinstance(entry, Mapping):
            yield (
                entry.get("host_ip", ""),
                interpolate(str(entry.get("published", "")), host),
                str(entry["target"]),
            )
            continue
        parts = interpolate(str(entry), host).split("/")[0].split(":")
        if len(parts) == 3:
            yield parts[0], parts[1], parts[2]
        elif len(parts) == 2:
            yield "", parts[0], parts[1]
        else:
            yield "", "", parts[0]


# --- helpers: Dockerfile -----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: continuations joined, comments dropped."""
    instructions, buffer = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buffer):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        buffer = ""
    return instructions


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m[1], m[0]), value)


def _arguments(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


class Image:
    """What the Dockerfile builds: base, ENV, copied files (source -> absolute target), RUNs."""

    def __init__(self) -> None:
        self.base = ""
        self.env: dict[str, str] = {}
        self.args: list[str] = []
        self.user = "root"
        self.workdir = "/"
        self.copies: dict[str, str] = {}
        self.runs: list[tuple[str, str]] = []  # (workdir, command)
        for keyword, args in dockerfile_instructions():
            if keyword == "FROM":
                self.base = args.split()[0]
            elif keyword == "ENV":
                tokens = shlex.split(args)
                if tokens and "=" not in tokens[0]:  # legacy `ENV NAME value`
                    tokens = [f"{tokens[0]}={' '.join(tokens[1:])}"]
                for token in tokens:
                    name, _, value = token.partition("=")
                    self.env[name] = _expand(value, self.env)
            elif keyword == "ARG":
                self.args.append(args.split("=")[0].strip())
            elif keyword == "WORKDIR":
                self.workdir = posixpath.join(self.workdir, _expand(args, self.env))
            elif keyword == "USER":
                self.user = args.split(":")[0]
            elif keyword in ("COPY", "ADD"):
                tokens = [t for t in _arguments(args) if not t.startswith("--")]
                *sources, dest = tokens
                dest = posixpath.join(self.workdir, _expand(dest, self.env))
                into_dir = dest.endswith("/") or len(sources) > 1 or dest.endswith("/.")
                for source in sources:
                    name = source.rstrip("/")
                    # A directory's *contents* land in dest; a file lands in dest/ or as dest.
                    is_dir = source.endswith("/") or (ROOT / name).is_dir()
                    into = into_dir and not is_dir
                    target = posixpath.join(dest, posixpath.basename(name)) if into else dest
                    self.copies[name] = posixpath.normpath(target)
            elif keyword == "RUN":
                self.runs.append((self.workdir, args))


@pytest.fixture(scope="module")
def image() -> Image:
    return Image()


# --- the files parse ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE, DAGSTER_YAML, WORKSPACE, WORKSPACE_DOCKER], ids=str)
def test_yaml_files_parse(path: Path) -> None:
    assert isinstance(load_yaml(path), dict), f"{path.name} is not a YAML mapping"


@pytest.mark.parametrize("path", [WORKSPACE, WORKSPACE_DOCKER], ids=lambda p: p.name)
def test_workspace_files_pass_dagster_workspace_schema(path: Path) -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    ensure_workspace_config(load_yaml(path), str(path))


# --- docker-compose ----------------------------------------------------------------------------


def test_compose_services_are_exactly_the_four(compose: dict) -> None:
    assert set(compose["services"]) == ALL_SERVICES


def test_postgres_service(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    assert str(postgres["image"]).split(":")[0] == "postgres"
    assert str(postgres["image"]).split(":")[1].startswith("16")
    env = service_env(postgres)
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert env.get(name), f"postgres service sets no {name}"
        assert "${" + name in env[name], f"{name} is not taken from a variable"
    assert "healthcheck" in postgres and postgres["healthcheck"]["test"]
    mounts = [str(v).split(":") for v in postgres.get("volumes", [])]
    named = {m[0] for m in mounts if len(m) >= 2 and not m[0].startswith((".", "/"))}
    assert named, "postgres data is not on a named volume"
    assert named <= set(compose.get("volumes") or {}), "postgres volume is not declared"


def test_grpc_server_in_docker_workspace_is_the_user_code_service(compose: dict) -> None:
    (entry,) = load_yaml(WORKSPACE_DOCKER)["load_from"]
    grpc = entry["grpc_server"]
    args = command_args(compose["services"]["user_code"])

    assert grpc["host"] == "user_code" and grpc["host"] in compose["services"]
    assert int(option(args, "-p", "--port")) == int(grpc["port"])
    assert option(args, "-h", "--host") == "0.0.0.0", "the code server only listens locally"

    # The same code location as local development (workspace.yaml) and pyproject.
    (local,) = load_yaml(WORKSPACE)["load_from"]
    local = local["python_module"]
    assert grpc["location_name"] == local["location_name"] == "breakout"
    assert option(args, "-m", "--module-name") == local["module_name"]


def test_dagster_services_load_the_docker_workspace(compose: dict, image: Image) -> None:
    services = compose["services"]
    webserver, daemon = command_args(services["webserver"]), command_args(services["daemon"])
    assert webserver[0] == "dagster-webserver" and daemon[:2] == ["dagster-daemon", "run"]
    for args in (webserver, daemon):
        workspace = option(args, "-w", "--workspace")
        assert workspace == WORKSPACE_DOCKER.name
        # A relative -w resolves against the image's WORKDIR: the file must be copied there.
        assert image.copies[WORKSPACE_DOCKER.name] == posixpath.join(image.workdir, workspace)
    assert option(webserver, "-h", "--host") == "0.0.0.0"
    for name in ("webserver", "daemon"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert "user_code" in depends


def test_ports_are_published_on_loopback_only(compose: dict) -> None:
    webserver_port = option(command_args(compose["services"]["webserver"]), "-p", "--port")
    assert "127.0.0.1:3000:3000" in compose["services"]["webserver"]["ports"]
    assert ("127.0.0.1", "3000", webserver_port) in set(
        published_ports(compose["services"]["webserver"])
    )
    for name, service in compose["services"].items():
        for host_ip, _published, target in published_ports(service):
            assert host_ip == "127.0.0.1", f"{name} publishes {target} on all interfaces"


def test_dagster_services_share_one_environment(compose: dict) -> None:
    envs = [service_env(compose["services"][name]) for name in DAGSTER_SERVICES]
    assert envs[0] and all(env == envs[0] for env in envs)


def test_every_variable_dagster_yaml_reads_is_set_in_every_dagster_service(
    compose: dict, dagster_config: dict
) -> None:
    referenced = set(env_references(dagster_config))
    assert "BREAKOUT_DAGSTER_PG_URL" in referenced
    for name in DAGSTER_SERVICES:
        env = resolved_env(compose["services"][name])
        for variable in referenced:
            assert env.get(variable), f"{name} does not set {variable} (read by dagster.yaml)"


def test_compose_environment_covers_the_runtime_environment(
    compose: dict, image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `breakout dagster ...` sets for a local Dagster process, docker sets too."""
    from breakout_assets import runtime

    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)
    env = resolved_env(compose["services"]["user_code"], {**HOST_ENV})
    settings = load_settings(
        database_url=env["BREAKOUT_DATABASE_URL"], dagster_home=tmp_path / "home"
    )
    expected = runtime.dagster_environment(settings)

    assert image.env["DAGSTER_HOME"], "DAGSTER_HOME is set by the image"
    for variable, value in expected.items():
        if variable == "DAGSTER_HOME":
            continue
        # Same names, and the same defaults (the storage URL derived the way the CLI derives it).
        assert env.get(variable) == value, variable


def test_dagster_storage_url_points_at_the_postgres_service(compose: dict) -> None:
    services = compose["services"]
    for host in (HOST_ENV, {**HOST_ENV, "POSTGRES_USER": "alice", "POSTGRES_DB": "trading"}):
        postgres = resolved_env(services["postgres"], host)
        container_ports = {t for _, _, t in published_ports(services["postgres"], host)}
        for name in DAGSTER_SERVICES:
            env = resolved_env(services[name], host)
            dagster_url = make_url(env["BREAKOUT_DAGSTER_PG_URL"])
            data_url = make_url(env["BREAKOUT_DATABASE_URL"])
            assert dagster_url.drivername == "postgresql+psycopg2"
            assert data_url.get_backend_name() == "postgresql"
            for url in (dagster_url, data_url):
                assert url.host == "postgres" and url.host in services
                assert str(url.port or 5432) in container_ports | {"5432"}
                assert url.username == postgres["POSTGRES_USER"]
                assert url.password == postgres["POSTGRES_PASSWORD"] == host["POSTGRES_PASSWORD"]
                assert url.database == postgres["POSTGRES_DB"]


def test_postgres_password_has_no_default(compose: dict) -> None:
    """Without POSTGRES_PASSWORD in the environment, compose refuses to start."""
    for name in ALL_SERVICES:
        for value in service_env(compose["services"][name]).values():
            if value and "POSTGRES_PASSWORD" in value:
                with pytest.raises(MissingVariable):
                    interpolate(value, {})


# --- no secrets in the files -------------------------------------------------------------------

_REFERENCE_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")


def test_no_secret_values_in_compose(compose: dict) -> None:
    text = COMPOSE.read_text()
    # No default value for any secret-looking variable, anywhere in the file.
    for match in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+])", text):
        assert not SECRET_NAME.search(match[1]), f"{match[1]} has a default in docker-compose.yml"

    for name, service in compose["services"].items():
        env = service_env(service)
        for variable, value in env.items():
            if SECRET_NAME.search(variable):
                assert value is None or _REFERENCE_ONLY.match(value), (
                    f"{name}: {variable} has a value in docker-compose.yml"
                )
            if value and "://" in value:
                # Give each referenced variable a marker value: a URL's password must come
                # from a secret variable (never literal text or another variable's default).
                names = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", value)))
                markers = {n: f"marker{i}" for i, n in enumerate(names)}
                password = make_url(interpolate(value, markers)).password
                allowed = {markers[n] for n in names if SECRET_NAME.search(n)}
                assert password is None or password in allowed, (
                    f"{name}: {variable} embeds a password"
                )

    for name in DAGSTER_SERVICES:
        env = service_env(compose["services"][name])
        assert "BREAKOUT_POLYGON_API_KEY" in env, f"{name} does not pass the API key through"
        assert env["BREAKOUT_POLYGON_API_KEY"] is None, "the API key must have no value here"


def test_no_secrets_in_dockerfile_or_dagster_yaml(image: Image, dagster_config: dict) -> None:
    for name in [*image.env, *image.args]:
        assert not SECRET_NAME.search(name), f"Dockerfile bakes {name} into the image"
    assert not re.search(r"postgres(ql)?(\+\w+)?://", DOCKERFILE.read_text())
    assert dagster_config["storage"]["custom"]["config"]["postgres_url"] == {
        "env": "BREAKOUT_DAGSTER_PG_URL"
    }
    assert "://" not in DAGSTER_YAML.read_text()


# --- Dockerfile --------------------------------------------------------------------------------

REQUIRED_IN_IMAGE = (
    "pyproject.toml",
    "constraints.txt",
    "README.md",  # pyproject's `readme`: the install fails without it
    "breakout_assets",
    "sql",
    "sample_data",
    "model_store",
    "dagster.yaml",
    "workspace.docker.yaml",
)


def test_dockerfile_copies_every_path_it_needs(image: Image) -> None:
    assert image.base == "python:3.11-slim"
    missing = [path for path in REQUIRED_IN_IMAGE if path not in image.copies]
    assert not missing, f"Dockerfile does not copy {missing}"
    absent = [source for source in image.copies if not (ROOT / source).exists()]
    assert not absent, f"Dockerfile copies paths missing from the build context: {absent}"


def test_project_tree_keeps_its_layout_in_the_image(image: Image) -> None:
    """sql.py finds sql/ two levels above itself, settings finds sample_data/ next to the
    package: both hold only if the package is installed editable from the copied tree."""
    package = image.copies["breakout_assets"]
    project = posixpath.dirname(package)
    assert project == image.workdir
    for name in ("sql", "sample_data", "model_store", "pyproject.toml", "constraints.txt"):
        assert image.copies[name] == posixpath.join(project, name), name

    installs = [(cwd, cmd) for cwd, cmd in image.runs if "pip install" in cmd]
    assert installs, "Dockerfile installs nothing"
    cwd, cmd = installs[-1]
    tokens = shlex.split(cmd)
    assert cwd == project
    assert option(tokens, "-c", "--constraint") == "constraints.txt"
    # the project itself (with extras, e.g. `.[k8s]` for the Kubernetes run pods)
    assert option(tokens, "-e", "--editable").split("[")[0] == "."


def test_dagster_home_holds_the_instance_config(image: Image, compose: dict) -> None:
    home = image.env["DAGSTER_HOME"]
    assert home == "/opt/dagster/home"
    assert image.copies["dagster.yaml"] == posixpath.join(home, "dagster.yaml")
    for name in DAGSTER_SERVICES:
        # Not overridden to somewhere else by compose.
        assert service_env(compose["services"][name]).get("DAGSTER_HOME") in (None, home)


def test_image_runs_as_a_non_root_user(image: Image) -> None:
    assert image.user not in ("root", "0")


# --- Dagster's own validation of dagster.yaml --------------------------------------------------


@pytest.fixture
def instance_dir(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    return home


def test_dagster_yaml_uses_postgres_storage_and_queued_runs(dagster_config: dict) -> None:
    from dagster_postgres import DagsterPostgresStorage

    storage = dagster_config["storage"]["custom"]
    klass = getattr(importlib.import_module(storage["module"]), storage["class"])
    assert issubclass(klass, DagsterPostgresStorage)
    assert dagster_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert dagster_config["run_launcher"]["class"] == "DefaultRunLauncher"


def test_dagster_yaml_passes_dagster_instance_validation(
    compose: dict, instance_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    url = resolved_env(compose["services"]["daemon"])["BREAKOUT_DAGSTER_PG_URL"]
    monkeypatch.setenv("BREAKOUT_DAGSTER_PG_URL", url)

    config, custom_instance_class = dagster_instance_config(str(instance_dir))
    assert custom_instance_class is None
    assert "custom" in config["storage"]

    # The classes the instance would build, with their config processed as Dagster does it
    # (env references resolved), short of connecting to the database.
    ref = InstanceRef.from_dir(str(instance_dir))
    processed = {}
    for data in (ref.storage_data, ref.run_coordinator_data, ref.run_launcher_data):
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
        assert result.success, (data.class_name, result.errors)
        processed[data.class_name] = result.value
    assert processed["ProjectPostgresStorage"]["postgres_url"] == url
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    # one run at a time touches the broker; the broker pool runs one op at a time
    [limit] = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert (limit["key"], limit["value"], limit["limit"]) == ("breakout/touches_broker", "true", 1)
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert set(processed) == {
        "ProjectPostgresStorage",
        "QueuedRunCoordinator",
        "DefaultRunLauncher",
    }


def test_dagster_yaml_needs_its_storage_variable(
    instance_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.ref import InstanceRef

    monkeypatch.delenv("BREAKOUT_DAGSTER_PG_URL", raising=False)
    data = InstanceRef.from_dir(str(instance_dir)).storage_data
    klass = getattr(importlib.import_module(data.module_name), data.class_name)
    result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
    assert not result.success
    assert "BREAKOUT_DAGSTER_PG_URL" in str(result.errors)
