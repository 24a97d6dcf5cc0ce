"""Static checks of how the project is packaged and shipped (no Docker engine needed).

The Astro image (Dockerfile, requirements.txt, packages.txt, .dockerignore), the local Astro stack
(docker-compose.override.yml), CI (.github/workflows/ci.yml, .ci/run) and the settings examples
(.env.example, airflow_settings.example.yaml). Each test names the mistake it guards against.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_HOME_IN_IMAGE = "/usr/local/airflow"
DATA_DIR_IN_IMAGE = f"{AIRFLOW_HOME_IN_IMAGE}/data"
RUNTIME_FROM = re.compile(r"^astrocrpublic\.azurecr\.io/runtime:3\.3-\d+(?:-python-(?P<python>3\.\d+))?$")
RUNTIME_DEFAULT_PYTHON = "3.12"  # Astro Runtime 3.x images without a "-python-3.X" suffix
XCOM_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"

# Services of the compose project the Astro CLI generates for Airflow 3 (astro-cli
# airflow/include/airflow3/composeyml.go.tmpl), all on the network "airflow".
ASTRO_SERVICES = {"postgres", "db-migration", "scheduler", "dag-processor", "api-server", "triggerer"}
ASTRO_NETWORKS = {"airflow"}
AIRFLOW_SERVICES = ("scheduler", "dag-processor", "api-server", "triggerer")
API_SERVICE = "prediction-api"
MLFLOW_SERVICE = "mlflow"
API_APP = "include.mlpipeline.serving.app:create_app"


def text(name: str) -> str:
    return (ROOT / name).read_text()


def load_yaml(name: str) -> Any:
    return yaml.safe_load(text(name))


# --- Dockerfile -----------------------------------------------------------------------------------
@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text("Dockerfile").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


@cache
def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            for item in shlex.split(args, posix=True):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=value form"
                env[key] = value
    return env


def expanded_in_fresh_image(value: str) -> str:
    """An ENV value as Docker expands it when the variables it refers to are not set yet."""
    value = re.sub(r"\$\{\w+:\+[^}]*\}", "", value)  # ${VAR:+word}: empty when VAR is unset
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)  # ${VAR:-word}: the default
    return re.sub(r"\$\{?\w+\}?", "", value)


def runtime_python() -> str:
    [image] = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    match = RUNTIME_FROM.match(image)
    assert match, image
    return match["python"] or RUNTIME_DEFAULT_PYTHON


def test_dockerfile_builds_on_the_airflow_3_3_runtime() -> None:
    """One stage, FROM the Astro Runtime 3.3 image (whose ONBUILD steps install the requirements)."""
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert instructions[0][0] == "FROM", "FROM must be the first instruction (ARG before FROM breaks Astro's parser)"
    assert len(froms) == 1, f"one FROM only (Astro deploys the last stage, ONBUILD runs in the first): {froms}"
    assert RUNTIME_FROM.match(froms[0]), f"not the Astro Runtime 3.3 image: {froms[0]}"


def test_one_python_everywhere() -> None:
    """The image runs the Python the lock was resolved for and CI tests on (a Runtime without a
    "-python-3.X" suffix brings its own default, and the pins were never tested there)."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    pyproject = tomllib.loads(text("pyproject.toml"))
    allowed = SpecifierSet(pyproject["project"]["requires-python"])
    minors = {f"3.{minor}" for minor in range(8, 20) if f"3.{minor}.0" in allowed}
    image = runtime_python()
    assert minors == {image}, f"requires-python {allowed} allows {sorted(minors)}; the image runs {image}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + image.replace(".", "")
    ci = [
        str(step["with"]["python-version"])
        for job in workflow()["jobs"].values()
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert ci and set(ci) == {image}, f"CI sets up Python {ci}; the image runs {image}"


def test_dockerfile_makes_include_importable_and_quiet() -> None:
    env = dockerfile_env()
    python_path = expanded_in_fresh_image(env.get("PYTHONPATH", "")).split(":")
    assert AIRFLOW_HOME_IN_IMAGE in python_path, "include/ would not be importable"
    assert "" not in python_path, "an empty PYTHONPATH entry puts the working directory on sys.path"
    assert env.get("MLFLOW_DISABLE_TELEMETRY") == "true"


def test_dockerfile_configures_the_object_storage_xcom_backend() -> None:
    """The backend class exists in the pinned common-io provider, with a valid threshold and codec."""
    import fsspec.compression

    env = dockerfile_env()
    assert env["AIRFLOW__CORE__XCOM_BACKEND"] == XCOM_BACKEND
    module_file = XCOM_BACKEND.rsplit(".", 1)[0].replace(".", "/") + ".py"
    provider = importlib.metadata.distribution("apache-airflow-providers-common-io")
    [source] = [f for f in provider.files or [] if str(f) == module_file]
    assert f"class {XCOM_BACKEND.rsplit('.', 1)[1]}" in source.read_text()
    assert env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"].startswith(f"file://{DATA_DIR_IN_IMAGE}/")
    assert int(env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD"]) == 4096
    compression = env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION"]
    assert compression in fsspec.compression.compr, f"{compression!r} is not an fsspec compression (gzip, not gz)"


def test_dockerfile_prepares_the_shared_data_folder() -> None:
    """Lake and XCom live under the data folder, which exists in the image and ends owned by astro."""
    env = dockerfile_env()
    lake = env["MLP_LAKE_URI"].removeprefix("file://")
    xcom = env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"].removeprefix("file://")
    runs = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")
    for folder in (lake, xcom):
        assert folder.startswith(f"{DATA_DIR_IN_IMAGE}/")
        assert folder in runs, f"{folder} is not created in the image"
    assert f"chown -R astro {DATA_DIR_IN_IMAGE}" in runs
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert not users or users[-1] == "astro", "the image must end as the astro user"


def test_dockerfile_takes_the_code_version_at_build_time() -> None:
    """code_version() reads MLP_CODE_VERSION; the image has no .git to ask."""
    instructions = dockerfile_instructions()
    assert ("ARG", 'MLP_CODE_VERSION=""') in instructions or ("ARG", "MLP_CODE_VERSION") in instructions
    assert dockerfile_env()["MLP_CODE_VERSION"] == "${MLP_CODE_VERSION}"
    assert "MLP_CODE_VERSION" in text("include/mlpipeline/core/code_version.py")


def test_packages_txt_exists_and_lists_only_package_names() -> None:
    """The Runtime's ONBUILD copies packages.txt: it must exist; comments are not a documented format."""
    lines = [line.strip() for line in text("packages.txt").splitlines() if line.strip()]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]*(=[\w.:~+-]+)?", line) for line in lines), lines


def test_dockerignore_keeps_secrets_and_local_state_out_but_the_project_in() -> None:
    patterns = [
        line.strip().rstrip("/") for line in text(".dockerignore").splitlines() if line.strip() and line[0] != "#"
    ]
    ignored = {p for p in patterns if not p.startswith("!")}
    for must in (".env", "airflow_settings.yaml", ".venv", ".local", "data", ".git", "**/__pycache__"):
        assert must in ignored, f"{must} would be baked into the image"
    for needed in ("dags", "include", "plugins", "requirements.txt", "packages.txt", "Dockerfile", ".astro"):
        hits = [p for p in ignored if fnmatch.fnmatch(needed, p)]
        assert not hits, f"{needed} is excluded from the image by {hits}"


# --- requirements --------------------------------------------------------------------------------
def requirements(name: str) -> list[Requirement]:
    found = []
    for raw in text(name).splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            found.append(Requirement(line))
    return found


@cache
def locked_versions() -> dict[str, str]:
    versions = {}
    for line in text("requirements.lock").splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: unpinned line {line!r}"
            versions[canonicalize_name(Requirement(name).name)] = version.split(";")[0].strip()
    return versions


def test_requirements_never_name_airflow_itself() -> None:
    """The Runtime image provides Airflow; naming it (pinned or not) lets pip replace it."""
    core = {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}
    named = [str(r) for r in requirements("requirements.txt") if canonicalize_name(r.name) in core]
    assert not named, f"remove from requirements.txt: {named}"
    providers = [r for r in requirements("requirements.txt") if r.name.startswith("apache-airflow-providers-")]
    assert providers, "the DAGs need their providers listed (standard, common-io, ...)"


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_requirements_are_pinned_to_the_locked_versions(name: str) -> None:
    """What the image installs is exactly what CI tested (requirements.lock)."""
    locked = locked_versions()
    problems = []
    for req in requirements(name):
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            problems.append(f"{req}: pin it with ==")
        elif locked.get(canonicalize_name(req.name)) != specs[0].version:
            problems.append(f"{req}: requirements.lock has {locked.get(canonicalize_name(req.name))}")
    assert not problems, "\n".join(problems)


def pinned(name: str) -> str:
    [req] = [r for r in requirements("requirements.txt") if canonicalize_name(r.name) == name]
    return next(iter(req.specifier)).version


# --- docker-compose.override.yml ----------------------------------------------------------------
@cache
def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.override.yml")


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: str(value) for key, value in env.items()}


def mounts(name: str) -> dict[str, str]:
    """container path -> source, from the short volume syntax."""
    found = {}
    for volume in service(name).get("volumes") or []:
        source, target = volume.split(":")[:2]
        found[target] = source
    return found


def container_ports(name: str) -> set[int]:
    return {int(str(port).split(":")[-1].split("/")[0]) for port in service(name).get("ports") or []}


def command_text(name: str) -> str:
    command = service(name).get("command")
    return command if isinstance(command, str) else " ".join(command)


def listen_port(name: str) -> int:
    match = re.search(r"--port[ =]\"?(\d+)", command_text(name))
    assert match, f"{name}: no --port in its command"
    return int(match[1])


def test_compose_references_only_services_networks_and_volumes_that_exist() -> None:
    services = compose()["services"]
    known_services = ASTRO_SERVICES | set(services)
    known_networks = ASTRO_NETWORKS | set(compose().get("networks") or {})
    declared_volumes = set(compose().get("volumes") or {})
    for name, spec in services.items():
        for dependency in spec.get("depends_on") or []:
            assert dependency in known_services, f"{name} depends on unknown service {dependency}"
        for network in spec.get("networks") or []:
            assert network in known_networks, f"{name} joins unknown network {network}"
        for target, source in mounts(name).items():
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name}: volume {source} ({target}) is not declared"


def test_compose_adds_services_that_astro_dev_start_can_run() -> None:
    """New services are on Astro's network and use published images: the Astro CLI does not build them."""
    for name, spec in compose()["services"].items():
        assert "build" not in spec, f"{name}: `astro dev start` never builds extra services; use an image"
        if name not in ASTRO_SERVICES:
            assert spec.get("image"), f"{name} has no image"
            assert "airflow" in (spec.get("networks") or []), f"{name} cannot reach Airflow off the airflow network"


def test_compose_wires_every_component_to_mlflow_by_service_name() -> None:
    mlflow_port = listen_port(MLFLOW_SERVICE)
    assert mlflow_port in container_ports(MLFLOW_SERVICE)
    url = f"http://{MLFLOW_SERVICE}:{mlflow_port}"
    for name in (*AIRFLOW_SERVICES, API_SERVICE):
        assert environment(name).get("MLP_MLFLOW_TRACKING_URI") == url, name
    allowed = environment(MLFLOW_SERVICE)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert any(fnmatch.fnmatch(f"{MLFLOW_SERVICE}:{mlflow_port}", host) for host in allowed), (
        "MLflow 3 would answer 403 to requests for mlflow:5000 (Host header not allowed)"
    )


def test_compose_wires_airflow_to_the_api_and_the_api_to_the_app() -> None:
    api_port = listen_port(API_SERVICE)
    assert api_port in container_ports(API_SERVICE)
    for name in AIRFLOW_SERVICES:
        assert environment(name).get("MLP_API_URL") == f"http://{API_SERVICE}:{api_port}", name
    assert f"--factory {API_APP}" in command_text(API_SERVICE)
    module, function = API_APP.split(":")
    assert f"def {function}(" in text(module.replace(".", "/") + ".py")
    assert mounts(API_SERVICE).get(f"{AIRFLOW_HOME_IN_IMAGE}/include") == "./include"
    assert environment(API_SERVICE).get("PYTHONPATH") == AIRFLOW_HOME_IN_IMAGE


def test_compose_api_start_script_is_valid_bash(tmp_path: Path) -> None:
    """The API's install-then-serve script, as bash receives it after compose turns $$ into $."""
    command = service(API_SERVICE)["command"]
    assert command[:2] == ["bash", "-c"], command
    script = tmp_path / "start.sh"
    script.write_text(command[2].replace("$$", "$"))
    subprocess.run(["bash", "-n", str(script)], check=True)
    for needed in ("requirements.txt", "requirements.lock"):
        assert needed in command[2]
        assert mounts(API_SERVICE).get(f"{AIRFLOW_HOME_IN_IMAGE}/{needed}") == f"./{needed}"


def test_compose_shares_one_data_volume() -> None:
    """Tasks (scheduler), callbacks (dag-processor), the UI's XCom view (api-server), the triggerer and
    the API all see the same lake and XCom files."""
    sources = {name: mounts(name).get(DATA_DIR_IN_IMAGE) for name in (*AIRFLOW_SERVICES, API_SERVICE)}
    assert len(set(sources.values())) == 1, sources
    assert None not in sources.values(), sources
    assert environment(API_SERVICE)["MLP_LAKE_URI"] == dockerfile_env()["MLP_LAKE_URI"]


def test_compose_gives_the_api_the_same_key_as_airflow() -> None:
    """Astro passes .env to the Airflow containers; the API must read the same file (not a shell value)."""
    env_files = service(API_SERVICE).get("env_file") or []
    assert {"path": ".env", "required": False} in env_files
    assert all("MLP_API_KEY" not in environment(name) for name in (*AIRFLOW_SERVICES, API_SERVICE)), (
        "an `environment:` entry would override the key from .env"
    )


def test_compose_health_checks_use_health_endpoints() -> None:
    for name in (MLFLOW_SERVICE, API_SERVICE):
        check = service(name)["healthcheck"]["test"]
        check = check if isinstance(check, str) else " ".join(check)
        assert f"localhost:{listen_port(name)}/health" in check, name


def test_compose_versions_match_the_pins() -> None:
    """MLflow server = client version; API Python = the Airflow image's Python (models are pickles)."""
    image = service(MLFLOW_SERVICE)["image"]
    assert image.endswith(f":v{pinned('mlflow')}"), f"{image} vs mlflow=={pinned('mlflow')}"
    api_image = service(API_SERVICE)["image"]
    match = re.fullmatch(r"python:\$\{MLP_API_PYTHON:-(3\.\d+)\}-slim", api_image)
    assert match, api_image
    assert match[1] == runtime_python(), f"API Python {match[1]} vs Airflow image Python {runtime_python()}"


def test_compose_interpolates_only_defaulted_variables() -> None:
    """Compose fills ${VAR} from the shell of `astro dev start`; a bare $x in a command would vanish."""
    lines = text("docker-compose.override.yml").splitlines()
    body = "\n".join(line for line in lines if not line.lstrip().startswith("#")).replace("$$", "")
    for match in re.finditer(r"\$", body):
        rest = body[match.start() :]
        assert re.match(r"\$\{[A-Z_][A-Z0-9_]*:-[^}]+\}", rest), f"unescaped or default-less $ at: {rest[:40]!r}"


# --- CI --------------------------------------------------------------------------------------------
@cache
def workflow() -> dict[str, Any]:
    return load_yaml(".github/workflows/ci.yml")


def steps(job: str) -> list[dict[str, Any]]:
    return workflow()["jobs"][job]["steps"]


def test_ci_runs_make_test_on_pull_requests_and_main() -> None:
    triggers = workflow().get("on", workflow().get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]
    job = workflow()["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert any(re.search(r"(^|\s)make test(\s|$)", step.get("run", "")) for step in job["steps"])
    [setup] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    assert str(setup["with"]["python-version"]) == "3.11"
    [cache_step] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert "hashFiles('requirements.lock')" in cache_step["with"]["key"]
    assert any(s.get("if") == "failure()" and "upload-artifact" in s.get("uses", "") for s in job["steps"])


def test_ci_provides_postgres_and_redis() -> None:
    services = workflow()["jobs"]["test"]["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert services["postgres"]["env"]["POSTGRES_DB"] == "test"
    assert "5432:5432" in services["postgres"]["ports"]
    assert services["redis"]["image"] == "redis:7"
    assert "6379:6379" in services["redis"]["ports"]


def test_ci_deploys_only_main_and_only_when_astro_is_configured() -> None:
    job = workflow()["jobs"]["deploy"]
    assert job["needs"] == "test" or job["needs"] == ["test"]
    assert "github.event_name == 'push'" in job["if"]
    assert "github.ref == 'refs/heads/main'" in job["if"]
    assert job["env"]["ASTRO_API_TOKEN"] == "${{ secrets.ASTRO_API_TOKEN }}"
    assert job["env"]["ASTRO_DEPLOYMENT_ID"] == "${{ secrets.ASTRO_DEPLOYMENT_ID }}"
    gate = "env.ASTRO_API_TOKEN != '' && env.ASTRO_DEPLOYMENT_ID != ''"
    working = [s for s in job["steps"] if "run" in s and "::notice::" not in s["run"]] + [
        s for s in job["steps"] if "uses" in s
    ]
    for step in working:
        assert step.get("if") == gate, f"step {step.get('name') or step.get('uses')} runs without Astro configured"
    deploy = " ".join(s["run"] for s in job["steps"] if "astro deploy" in s.get("run", ""))
    assert '"${ASTRO_DEPLOYMENT_ID}"' in deploy
    assert "--force" in deploy
    build = " ".join(s["run"] for s in job["steps"] if "docker build" in s.get("run", ""))
    assert "--build-arg MLP_CODE_VERSION=" in build
    tag = re.search(r"--tag \"([^\"]+)\"", build)
    assert tag, build
    assert f'--image-name "{tag[1]}"' in deploy, "deploy must ship the image built with the commit"


def test_ci_never_reads_secrets_in_conditions() -> None:
    """GitHub rejects `secrets.*` in `if:`; they go through env (see the deploy job)."""
    for job in workflow()["jobs"].values():
        conditions = [job.get("if", "")] + [step.get("if", "") for step in job.get("steps", [])]
        assert not [c for c in conditions if "secrets." in str(c)]


def test_ci_run_script_runs_the_suite() -> None:
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK), ".ci/run must be executable"
    body = script.read_text()
    assert body.startswith("#!/usr/bin/env bash") or body.startswith("#!/bin/bash")
    assert "set -euo pipefail" in body
    assert re.search(r"(^|\s)make test\s*$", body, re.MULTILINE)
    subprocess.run(["bash", "-n", str(script)], check=True)


# --- settings examples ----------------------------------------------------------------------------
def settings_classes() -> list[type]:
    from include.flight_delay.sources import FlightSourceSettings
    from include.mlpipeline.core.settings import Settings

    return [Settings, FlightSourceSettings]


def env_names(cls: type) -> set[str]:
    prefix = cls.env_prefix
    return {f"{prefix}{field}".upper() for field in cls.model_fields}


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(re.findall(r"^\s*#?\s*(MLP_[A-Z0-9_]+)=", text(".env.example"), re.MULTILINE))
    expected = set().union(*(env_names(cls) for cls in settings_classes()))
    assert not expected - listed, f"missing from .env.example: {sorted(expected - listed)}"
    assert not listed - expected, f"not a setting (typo?): {sorted(listed - expected)}"


def test_env_example_holds_no_real_secret() -> None:
    active = dict(line.split("=", 1) for line in text(".env.example").splitlines() if line.strip() and line[0] != "#")
    assert set(active) == {"MLP_API_KEY"}, "only the API key placeholder is active; everything else shows defaults"
    assert "replace" in active["MLP_API_KEY"]


def test_local_secrets_stay_out_of_git() -> None:
    ignored = {line.strip() for line in text(".gitignore").splitlines()}
    assert {".env", "airflow_settings.yaml"} <= ignored


def is_placeholder(value: Any) -> bool:
    return value in (None, "") or bool(re.search(r"<[^>]+>", str(value)))


def test_airflow_settings_example_has_the_pipeline_objects_and_no_secrets() -> None:
    settings = load_yaml("airflow_settings.example.yaml")["airflow"]
    connections = {c["conn_id"]: c for c in settings["connections"]}
    assert connections["slack_default"]["conn_type"] == "slackwebhook"
    assert connections["aws_default"]["conn_type"] == "aws"
    for conn in connections.values():
        assert conn.get("conn_port") is None or isinstance(conn["conn_port"], int)
        for field in ("conn_password", "conn_login", "conn_uri"):
            assert is_placeholder(conn.get(field)), f"{conn['conn_id']}.{field} looks like a real value"
        for key, value in (conn.get("conn_extra") or {}).items():
            if re.search(r"secret|token|password|key", key, re.IGNORECASE):
                assert is_placeholder(value), f"{conn['conn_id']}.conn_extra.{key} looks like a secret"
    pools = {p["pool_name"]: p for p in settings["pools"]}
    assert isinstance(pools["training"]["pool_slot"], int)
    assert pools["training"]["pool_slot"] >= 1
    assert isinstance(settings.get("variables"), list)


def test_astro_project_layout() -> None:
    for path in ("dags", "include", "plugins", "tests", ".astro/dag_integrity_exceptions.txt"):
        assert (ROOT / path).exists(), path
    assert load_yaml(".astro/config.yaml")["project"]["name"]
    assert (ROOT / ".astro" / "test_dag_integrity_default.py").exists(), "astro dev parse runs this file"
