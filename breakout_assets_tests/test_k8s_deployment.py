"""The Kubernetes deployment (deploy/k8s/), checked without Helm or a cluster (neither exists
here): the Helm values, rendered the way Dagster's chart renders the instance, and the k8s
dagster.yaml must pass Dagster's own config schemas (run launcher, run coordinator, storage,
concurrency, executor), and both must agree with each other, with docker-compose, the
Dockerfile, the repo's dagster.yaml and the settings: names, ports, variables and secrets.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from breakout_assets.settings import ENV_PREFIX, BreakoutSettings
from breakout_assets_tests.test_deployment import (
    COMPOSE,
    DAGSTER_YAML,
    SECRET_NAME,
    Image,
    command_args,
    env_references,
    load_yaml,
    option,
    service_env,
)

pytest.importorskip("dagster_k8s", reason="the k8s extra (make install installs it)")

from dagster._config import process_config, resolve_to_config_type  # noqa: E402
from dagster_k8s import K8sRunLauncher  # noqa: E402

K8S_DIR = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
VALUES = K8S_DIR / "values.yaml"
K8S_DAGSTER_YAML = K8S_DIR / "dagster.yaml"
NAMESPACE = "breakout"
SECRET = "breakout-secrets"
# What the chart's run launcher template reads from the pods' environment.
CHART_ENV = {
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "breakout-dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "breakout-dagster-pipeline-env",
}
_RUN_K8S_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


@pytest.fixture(scope="module")
def values() -> dict:
    return load_yaml(VALUES)


@pytest.fixture(scope="module")
def k8s_instance() -> dict:
    return load_yaml(K8S_DAGSTER_YAML)


@pytest.fixture
def chart_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CHART_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "BREAKOUT_DAGSTER_PG_URL", "postgresql+psycopg2://breakout:x@db.internal:5432/breakout"
    )


def _names(entries: list | None) -> list[str]:
    return [e["name"] for e in entries or [] if isinstance(e, dict) and e.get("name")]


def chart_run_launcher(values: dict) -> dict:
    """The run launcher config the chart renders from `runLauncher.config.k8sRunLauncher` (its
    `dagsterYaml.runLauncher.k8s` template, for the keys these values use)."""
    config = values["runLauncher"]["config"]["k8sRunLauncher"]
    rendered: dict[str, Any] = {
        "load_incluster_config": config["loadInclusterConfig"],
        "job_namespace": config.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": config["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [
            {"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"},
            *_names(config.get("envConfigMaps")),
        ],
    }
    if config.get("envSecrets"):
        rendered["env_secrets"] = _names(config["envSecrets"])
    if config.get("failPodOnRunFailure"):
        rendered["fail_pod_on_run_failure"] = True
    if config.get("runK8sConfig"):
        unknown = set(config["runK8sConfig"]) - set(_RUN_K8S_KEYS)
        assert not unknown, f"the chart ignores runK8sConfig keys {unknown}"
        rendered["run_k8s_config"] = {
            _RUN_K8S_KEYS[key]: value for key, value in config["runK8sConfig"].items()
        }
    return rendered


def chart_concurrency(values: dict) -> dict:
    """The instance's `concurrency:` the chart renders from `concurrency` (camelCase keys)."""
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    return {
        "runs": {
            "max_concurrent_runs": runs["maxConcurrentRuns"],
            "tag_concurrency_limits": runs["tagConcurrencyLimits"],
        },
        "pools": {"default_limit": pools["defaultLimit"]},
    }


def _valid(klass: type, config: dict) -> dict:
    result = process_config(resolve_to_config_type(klass.config_type()), config)
    assert result.success, (klass.__name__, result.errors)
    return result.value


def test_values_render_a_run_launcher_dagster_k8s_accepts(values: dict, chart_env) -> None:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    config = _valid(K8sRunLauncher, chart_run_launcher(values))
    assert config["job_namespace"] == NAMESPACE
    assert config["env_secrets"] == [SECRET]
    assert config["dagster_home"] == CHART_ENV["DAGSTER_HOME"]
    requests = config["run_k8s_config"]["container_config"]["resources"]["requests"]
    assert requests["cpu"] == "2"


def test_a_typo_in_the_launcher_values_is_refused(values: dict, chart_env) -> None:
    """The schema check has teeth: an unknown field fails Dagster's validation."""
    broken = {**chart_run_launcher(values), "job_namespaces": NAMESPACE}
    result = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), broken)
    assert not result.success


def test_k8s_instance_passes_dagster_instance_validation(
    k8s_instance: dict, chart_env, tmp_path: Path
) -> None:
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    shutil.copy(K8S_DAGSTER_YAML, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    ref = InstanceRef.from_dir(str(tmp_path))
    processed = {}
    for data in (ref.storage_data, ref.run_coordinator_data, ref.run_launcher_data):
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        processed[data.class_name] = _valid(klass, data.config_dict)
    assert set(processed) == {"DagsterPostgresStorage", "QueuedRunCoordinator", "K8sRunLauncher"}
    assert processed["K8sRunLauncher"]["instance_config_map"] == "breakout-dagster-instance"
    assert config["run_monitoring"]["enabled"] is True
    assert config["telemetry"]["enabled"] is False


def test_values_and_the_k8s_instance_are_one_deployment(values: dict, k8s_instance: dict) -> None:
    launcher = k8s_instance["run_launcher"]["config"]
    rendered = chart_run_launcher(values)
    for key in (
        "job_namespace",
        "load_incluster_config",
        "service_account_name",
        "image_pull_policy",
        "env_secrets",
        "run_k8s_config",
        "fail_pod_on_run_failure",
    ):
        assert launcher[key] == rendered[key], key
    assert k8s_instance["concurrency"] == chart_concurrency(values)
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert k8s_instance["run_monitoring"] == {
        "enabled": monitoring["enabled"],
        "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
    }
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert k8s_instance["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_the_broker_limits_are_the_local_ones(k8s_instance: dict) -> None:
    """One broker run at a time and a broker pool of one op, on Kubernetes as on one machine."""
    local = load_yaml(DAGSTER_YAML)["concurrency"]
    k8s = k8s_instance["concurrency"]
    assert k8s["runs"]["tag_concurrency_limits"] == local["runs"]["tag_concurrency_limits"]
    assert k8s["pools"] == local["pools"]


def test_the_user_code_deployment_serves_the_compose_code_location(values: dict) -> None:
    compose = load_yaml(COMPOSE)
    [deployment] = values["dagster-user-deployments"]["deployments"]
    served = command_args(compose["services"]["user_code"])
    args = deployment["dagsterApiGrpcArgs"]
    assert option(args, "-m", "--module-name") == option(served, "-m", "--module-name")
    assert option(args, "--location-name") == option(served, "--location-name")
    assert str(deployment["port"]) == option(served, "-p", "--port")
    web = command_args(compose["services"]["webserver"])
    assert str(values["dagsterWebserver"]["service"]["port"]) == option(web, "-p", "--port")
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"  # not exposed publicly
    image = compose["services"]["user_code"]["image"].split(":")[0]
    assert deployment["image"]["repository"] == image
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def test_the_image_has_the_k8s_extra() -> None:
    """Run pods load the instance (dagster_k8s.K8sRunLauncher) from the user-code image."""
    installs = [cmd for _, cmd in Image().runs if "pip install" in cmd]
    assert any("[k8s]" in cmd or "k8s]" in cmd for cmd in installs), installs


def test_variables_agree_with_compose_and_the_settings(values: dict, k8s_instance: dict) -> None:
    compose = load_yaml(COMPOSE)
    compose_env = service_env(compose["services"]["user_code"])
    [deployment] = values["dagster-user-deployments"]["deployments"]
    plain = {e["name"]: e["value"] for e in deployment["env"]}
    # Every non-secret variable compose gives the code location, the deployment gives too.
    for name, value in compose_env.items():
        if value is None or SECRET_NAME.search(name) or name.endswith("_URL"):
            continue
        assert name in plain, name
    # Every BREAKOUT_* variable set is a real setting (a typo would silently do nothing).
    fields = set(BreakoutSettings.model_fields)
    for name in plain:
        if name.startswith(ENV_PREFIX):
            field = name.removeprefix(ENV_PREFIX).lower().split("__")[0]
            assert field in fields, name
    # The URLs the code and dagster.yaml read come from the Secret, never from values.
    needed = set(env_references(k8s_instance)) - set(CHART_ENV)
    assert needed == {"BREAKOUT_DAGSTER_PG_URL"}
    assert "BREAKOUT_DATABASE_URL" not in plain and "BREAKOUT_DAGSTER_PG_URL" not in plain
    assert SECRET in _names(deployment["envSecrets"])
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]


def _scalars(node: Any, path: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _scalars(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _scalars(value, f"{path}[{i}]")
    else:
        yield path, node


# A key holding a credential itself (a key naming a Secret, e.g. postgresqlSecretName, is fine).
CREDENTIAL_KEY = re.compile(r"PASSWORD|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)


@pytest.mark.parametrize("path", [VALUES, K8S_DAGSTER_YAML])
def test_no_credentials_in_the_k8s_files(path: Path) -> None:
    config = load_yaml(path)
    for where, value in _scalars(config):
        if isinstance(value, str):
            assert not re.search(r"://[^/@\s]+:[^@\s]+@", value), where  # user:password@
        if isinstance(value, str) and CREDENTIAL_KEY.search(where.rsplit(".", 1)[-1]):
            pytest.fail(f"{path.name}: a credential-looking key {where} holds a value")
    for deployment in config.get("dagster-user-deployments", {}).get("deployments", []):
        for entry in deployment.get("env", []):
            assert not SECRET_NAME.search(entry["name"]), f"{entry['name']} belongs in a Secret"


def test_the_executor_accepts_a_run_pods_config() -> None:
    """Inside a run pod the code location's own executor runs the steps: its config schema
    (Dagster's multi_or_in_process one) takes the two processes a pod's two cores allow."""
    from breakout_assets.run_guard import guarded_executor

    schema = resolve_to_config_type(guarded_executor.config_schema.config_type)
    result = process_config(schema, {"multiprocess": {"max_concurrent": 2}})
    assert result.success, result.errors
    assert not process_config(schema, {"multiprocess": {"max_concurrency": 2}}).success
