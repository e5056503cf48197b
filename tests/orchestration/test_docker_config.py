"""docker/: the compose file and the Dockerfiles hold together, and the compose server is safe by default:
bound to 127.0.0.1, no default password, auth on, secrets only in a git-ignored env file (no Docker daemon
needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER_DIR / "docker-compose.yml").read_text())


def dockerfile_args(path: Path) -> dict[str, str]:
    """``ARG NAME=default`` lines of a Dockerfile (defaults as written)."""
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", path.read_text(), flags=re.MULTILINE))


def expanded(value: str) -> str:
    """A compose value with ``${VAR:-default}`` replaced by its default and a required ``${VAR:?error}`` by
    ``<VAR>``, as with an environment that sets only the required variables."""
    value = re.sub(r"\$\{(\w+):\?[^}]*\}", r"<\1>", value)
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments skipped)."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


SECRETS = ("POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_SECRET_KEY")


def test_every_compose_build_names_an_existing_dockerfile() -> None:
    builds = {name: s["build"] for name, s in COMPOSE["services"].items() if "build" in s}
    assert set(builds) == {"mlflow", "train"}
    for build in builds.values():
        assert (DOCKER_DIR / build["context"] / build["dockerfile"]).is_file()


def test_mlflow_server_is_backed_by_postgres_and_an_artifact_volume() -> None:
    mlflow = COMPOSE["services"]["mlflow"]
    command = [expanded(str(part)) for part in mlflow["command"]]
    backend = command[command.index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql://") and "@postgres:5432/" in backend
    artifacts = command[command.index("--artifacts-destination") + 1]
    volume = next(v.split(":")[0] for v in mlflow["volumes"] if v.endswith(f":{artifacts}"))
    assert volume in COMPOSE["volumes"]
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgdata" in COMPOSE["volumes"]


def test_mlflow_server_options_exist_in_the_installed_mlflow() -> None:
    from mlflow.cli import cli

    command = [str(part) for part in COMPOSE["services"]["mlflow"]["command"]]
    assert command[:2] == ["mlflow", "server"]
    known = {opt for param in cli.commands["server"].params for opt in param.opts}
    assert [part for part in command if part.startswith("--") and part not in known] == []


def test_only_the_mlflow_server_publishes_a_port_and_on_127_0_0_1_unless_told() -> None:
    published = {name: s["ports"] for name, s in COMPOSE["services"].items() if "ports" in s}
    assert list(published) == ["mlflow"]
    (port,) = published["mlflow"]
    assert port.startswith("${MLFLOW_BIND:-127.0.0.1}:")
    assert expanded(port) == "127.0.0.1:5000:5000"


def test_every_secret_is_required_and_has_no_default() -> None:
    text = (DOCKER_DIR / "docker-compose.yml").read_text()
    for name in SECRETS:
        uses = re.findall(rf"\$\{{{name}(:?[-?=+]?)[^}}]*\}}", text)
        assert uses and set(uses) == {":?"}, (name, uses)  # ${NAME:?…}: compose refuses to start without it
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert expanded(postgres["POSTGRES_PASSWORD"]) == "<POSTGRES_PASSWORD>"
    command = [expanded(str(part)) for part in COMPOSE["services"]["mlflow"]["command"]]
    backend = command[command.index("--backend-store-uri") + 1]
    assert backend == "postgresql://mlflow:<POSTGRES_PASSWORD>@postgres:5432/mlflow"


def test_the_server_runs_basic_auth_with_its_admin_from_the_environment(monkeypatch) -> None:
    from mlflow.server.auth.config import read_auth_config

    mlflow = COMPOSE["services"]["mlflow"]
    command = [str(part) for part in mlflow["command"]]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    environment = {key: expanded(str(value)) for key, value in mlflow["environment"].items()}
    assert environment["MLFLOW_AUTH_ADMIN_PASSWORD"] == "<MLFLOW_ADMIN_PASSWORD>"
    assert environment["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "<MLFLOW_SECRET_KEY>"
    config_path = environment["MLFLOW_AUTH_CONFIG_PATH"]
    mounted = {v.rsplit(":", 2)[1]: v.split(":")[0] for v in mlflow["volumes"] if v.count(":") == 2}
    ini = DOCKER_DIR / mounted[config_path]
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    config = read_auth_config()
    assert config.admin_password is None  # the committed file holds no password
    auth_volume = next(v.split(":")[0] for v in mlflow["volumes"] if v.startswith("mlauth:"))
    assert auth_volume in COMPOSE["volumes"] and config.database_uri == "sqlite:////mlauth/basic_auth.db"
    train = COMPOSE["services"]["train"]["environment"]
    assert train["MLFLOW_TRACKING_USERNAME"] is None and train["MLFLOW_TRACKING_PASSWORD"] is None


def test_the_example_env_file_is_committed_and_the_real_one_ignored() -> None:
    example = env_file(DOCKER_DIR / "env.example")
    assert set(SECRETS) <= set(example) and example["MLFLOW_BIND"] == "127.0.0.1"
    ignored = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", "docker/.env"], check=False)
    assert ignored.returncode == 0
    example_ignored = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "check-ignore", "-q", "docker/env.example"], check=False
    )
    assert example_ignored.returncode == 1


def test_mlflow_server_accepts_the_compose_service_name_as_host() -> None:
    allowed = expanded(COMPOSE["services"]["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"])
    assert {"mlflow:*", "localhost:*"} <= set(allowed.split(","))


def test_training_image_is_cpu_by_default_with_a_build_arg_for_a_cuda_base() -> None:
    dockerfile = DOCKER_DIR / "Dockerfile"
    args = dockerfile_args(dockerfile)
    assert "cuda" not in args["BASE_IMAGE"]
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile.read_text(), flags=re.MULTILINE)
    train_args = COMPOSE["services"]["train"]["build"]["args"]
    assert expanded(train_args["BASE_IMAGE"]) == args["BASE_IMAGE"]


def test_training_image_copies_only_paths_in_the_repository() -> None:
    copies = re.findall(r"^COPY (.+) \S+$", (DOCKER_DIR / "Dockerfile").read_text(), flags=re.MULTILINE)
    sources = [src for line in copies for src in line.split()]
    assert sources
    assert [src for src in sources if not (REPO_ROOT / src).exists()] == []


def test_compose_file_passes_docker_compose_config_only_with_the_secrets(tmp_path) -> None:
    docker = shutil.which("docker")
    probe = docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if not probe or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    config = [docker, "compose", "-f", str(DOCKER_DIR / "docker-compose.yml")]
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = subprocess.run(
        [*config, "--env-file", str(empty), "config", "--quiet"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr
    example = DOCKER_DIR / "env.example"
    subprocess.run([*config, "--env-file", str(example), "config", "--quiet"], check=True, timeout=60)
