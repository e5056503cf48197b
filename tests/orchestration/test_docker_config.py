"""docker/: the compose file and the Dockerfiles hold together (no Docker daemon needed)."""

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
    """A compose value with ``${VAR:-default}`` replaced by its default, as with an empty environment."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


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


def test_compose_file_passes_docker_compose_config() -> None:
    docker = shutil.which("docker")
    probe = docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if not probe or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    subprocess.run(
        [docker, "compose", "-f", str(DOCKER_DIR / "docker-compose.yml"), "config", "--quiet"],
        check=True,
        timeout=60,
    )
