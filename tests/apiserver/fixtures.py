"""Pytest fixtures: `apiserver`, `kube_api`, `kubeconfig_path`, `kubectl`.

Enabled for the whole suite by `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.apiserver.server import ApiServer

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    """A fresh, started API-server double; stopped at teardown."""
    server = ApiServer(bookmark_interval=0.2).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube_api(apiserver: ApiServer) -> Iterator[client.ApiClient]:
    """An official-client `ApiClient` pointed at the double (no auth, default retries)."""
    config = client.Configuration(host=apiserver.url)
    api_client = client.ApiClient(config)
    try:
        yield api_client
    finally:
        api_client.close()


def write_kubeconfig(
    path: Path, server_url: str, *, namespace: str = "default", token: str | None = None
) -> Path:
    """Write a minimal kubeconfig (one cluster, one user, one context); the user is the
    double's admin without a `token`, else the service account the token was minted for."""
    user = f"{{token: {token}}}" if token is not None else "{}"
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: double\n  cluster:\n    server: {server_url}\n"
        "users:\n"
        f"- name: double\n  user: {user}\n"
        "contexts:\n"
        f"- name: double\n  context:\n    cluster: double\n    user: double\n"
        f"    namespace: {namespace}\n"
        "current-context: double\n"
    )
    return path


@pytest.fixture
def kubeconfig_path(apiserver: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig file whose current context is the double."""
    return write_kubeconfig(tmp_path / "kubeconfig", apiserver.url)


@pytest.fixture
def kubectl(kubeconfig_path: Path, tmp_path: Path) -> KubectlRunner:
    """Run `kubectl <args>` against the double; skips when kubectl is not installed.

    Returns the CompletedProcess (text mode); pass `check=False` to inspect failures.
    """
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed (shutil.which('kubectl') is None)")
    home = tmp_path / "kubectl-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig_path),
    }

    def run(
        *args: str, check: bool = True, timeout: float = 20.0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [binary, f"--cache-dir={home / 'cache'}", "--request-timeout=10s", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
            )
        return proc

    return run
