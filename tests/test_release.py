"""The release workflow: on a tag, the distributions, the image pushed to the repository's
own registry (named from the repository), and manifests pinned to it by digest; the
Dockerfile gives the image the tag's version. actionlint, zizmor (tests/test_workflows.py)
and hadolint (tests/deploy) check them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
KUBECTL = shutil.which("kubectl") or str(Path(sys.executable).with_name("kubectl"))


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(RELEASE.read_text())
    return loaded


def test_a_tag_builds_the_distributions_and_pushes_to_the_repository_s_registry() -> None:
    flow = workflow()
    assert flow["on"] == {"push": {"tags": ["v*"]}}
    (job,) = flow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "packages": "write"}
    runs = {step.get("name"): step.get("run", "") for step in job["steps"]}
    assert "python -m build --outdir dist ." in runs["Build the wheel and the sdist"]
    push = runs["Build and push the image"]
    assert 'image="ghcr.io/${GITHUB_REPOSITORY,,}"' in push  # named from the repository
    assert '--build-arg "VERSION=$version"' in push and 'docker push "$image:$version"' in push
    assert "--password-stdin" in push and "${{" not in push
    render = runs["Render the manifests pinned to the image"]
    assert 'digest: \\"$DIGEST\\"' in render and "kubectl kustomize" in render
    assert "gh release create" in runs["Publish the release"]


def test_the_dockerfile_carries_the_tag_s_version_into_the_wheel() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG VERSION=0.0.0\nENV SETUPTOOLS_SCM_PRETEND_VERSION_FOR_TOPOCTL=$VERSION" in text


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")
def test_the_release_overlay_renders_with_the_image_pinned(tmp_path: Path) -> None:
    """The release step's overlay, run here with an image and digest as the push gives."""
    (job,) = workflow()["jobs"].values()
    (step,) = [
        s for s in job["steps"] if s.get("name") == "Render the manifests pinned to the image"
    ]
    work = tmp_path / "checkout"
    shutil.copytree(ROOT / "deploy", work / "deploy")
    (work / "dist").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(KUBECTL)
    digest = "sha256:" + "ab" * 32
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "RUNNER_TEMP": str(tmp_path / "temp"),
        "IMAGE": "ghcr.io/acme/topoctl",
        "DIGEST": digest,
    }
    (tmp_path / "temp").mkdir()
    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=work, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = (work / "dist" / "topoctl.yaml").read_text()
    assert rendered.count(f"image: ghcr.io/acme/topoctl@{digest}") == 2  # controller, agent
    assert "image: topoctl\n" not in rendered
