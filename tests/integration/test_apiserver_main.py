# mypy: disable-error-code="arg-type,union-attr,index,operator,type-var"
# (the client's models type every field Optional; these tests read what they just wrote)
"""`python -m tests.apiserver` as a process: URL first, nodes from a file, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_standalone_double_serves_a_nodes_file(sig: signal.Signals) -> None:
    source = yaml.safe_load((ROOT / "examples" / "nodes.yaml").read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apiserver", "--nodes", "examples/nodes.yaml"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        api = client.ApiClient(client.Configuration(host=url))
        nodes = client.CoreV1Api(api).list_node().items
        api.close()
        assert sorted(n.metadata.name for n in nodes) == sorted(
            i["metadata"]["name"] for i in source["items"]
        )
        file_uids = {i["metadata"]["uid"] for i in source["items"]}
        assert not file_uids & {n.metadata.uid for n in nodes}  # the double's own uids
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_nodes_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "pods.yaml"
    bad.write_text("kind: List\nitems:\n- kind: Pod\n  apiVersion: v1\n  metadata: {name: p}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.apiserver", "--nodes", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == "" and "not a Node" in proc.stderr
