"""``topoctl import`` through the real command line, on two clusters set up by hand:

- the example snapshot (``examples/nodes.yaml``), which carries the usual mistakes;
- a Cozystack cluster as its docs set one up, on the API-server double: cloud nodes
  whose Talos machine config sets ``kilo.squat.ai/location`` and a keepalive of "20"
  (Talos writes its ownership lists as JSON arrays), on-premise nodes annotated with
  ``kubectl annotate nodes -l topology.kubernetes.io/zone=on-prem ...``, the docs'
  own commands, run with the real kubectl.

Each import is compared with its golden files (``TOPOCTL_UPDATE_GOLDEN=1`` rewrites them,
then review the diff), then planned against the same cluster: the plan changes nothing
Kilo or Kubernetes reads. On the double the plan is applied too, and Kilo's own code
(``kilo-topo``) reads the nodes alike before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.model import keys
from tests.apiserver.fixtures import KubectlRunner
from tests.apiserver.server import ApiServer

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "import"
SEEN = "1795683600"
KEY = "c2NlbmFyaW8gdGVzdCBrZXkgLSBub3QgcmVhbCEhISE="


def topoctl(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"topoctl {args} crashed") from result.exception
    return result


def check_golden(case: str, out: Path, report: str) -> None:
    """The imported files and the report against tests/golden/import/CASE/."""
    golden = GOLDEN / case
    written = {p.name: p.read_text() for p in sorted(out.glob("*.yaml"))}
    written["report.txt"] = report.replace(str(out), "<out>")
    if os.environ.get("TOPOCTL_UPDATE_GOLDEN") == "1":
        golden.mkdir(parents=True, exist_ok=True)
        for old in golden.iterdir():
            old.unlink()
        for name, text in written.items():
            (golden / name).write_text(text)
    expected = {p.name: p.read_text() for p in sorted(golden.iterdir())}
    assert written == expected


def assert_plan_changes_nothing_kilo_reads(plan: dict[str, Any]) -> None:
    """Only topoctl's own records, and rewrites Kilo reads the same way."""
    for change in plan["changes"]:
        assert change["key"].startswith(keys.TOPOCTL) or change["same_for_kilo"], change
    assert plan["summary"]["leader_changes"] == 0
    assert plan["summary"]["errors"] == 0


# --- the example snapshot ---------------------------------------------------------------


def test_import_of_the_example_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "sites"
    result = topoctl("import", "--cluster", ROOT / "examples" / "nodes.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    check_golden("examples", out, result.stdout)
    assert "'20s' is not a whole number of seconds" in result.stdout
    planned = topoctl(
        "plan", out, "--cluster", ROOT / "examples" / "nodes.yaml", "--format", "json"
    )
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert_plan_changes_nothing_kilo_reads(plan)
    alike = {(c["node"], c["key"]) for c in plan["changes"] if c["same_for_kilo"]}
    assert alike == {
        ("fsn1-worker-7kq2p", keys.KILO_LEADER),  # "false" -> "true"
        ("fsn1-worker-7kq2p", keys.KILO_PERSISTENT_KEEPALIVE),  # "20s" removed
    }
    text = topoctl("plan", out, "--cluster", ROOT / "examples" / "nodes.yaml").stdout
    assert '"false" -> "true"  (same for Kilo)' in text


def test_import_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "sites"
    out.mkdir()
    (out / "hetzner-fsn1.yaml").write_text("# mine\n")
    nodes = ROOT / "examples" / "nodes.yaml"
    refused = topoctl("import", "--cluster", nodes, "--out", out)
    assert refused.exit_code == 1
    assert "already exist" in refused.stderr and "--force" in refused.stderr
    assert (out / "hetzner-fsn1.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["hetzner-fsn1.yaml"]  # nothing written
    forced = topoctl("import", "--cluster", nodes, "--out", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert "kind: Site" in (out / "hetzner-fsn1.yaml").read_text()


def test_import_to_stdout_prints_the_files_and_reports_on_stderr(tmp_path: Path) -> None:
    result = topoctl("import", "--cluster", ROOT / "examples" / "nodes.yaml", "--out", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n---\n") == 3  # cluster.yaml and three sites
    assert "kind: Cluster" in result.stdout and "topoctl import:" in result.stderr
    again = topoctl("import", "--cluster", ROOT / "examples" / "nodes.yaml", "--out", "-")
    assert again.stdout == result.stdout  # deterministic


def test_import_help_teaches() -> None:
    result = topoctl("import", "--help")
    assert result.exit_code == 0
    for words in ("Kilo location", "20s", "--force", "same for", "--out -"):
        assert words in result.output


# --- a Cozystack cluster, set up as its docs say ----------------------------------------

ON_PREM = ("cozy-cp-1", "cozy-cp-2", "cozy-cp-3", "cozy-worker-1")
HETZNER = ("hetzner-workers-5d7f2", "hetzner-workers-9kq4m")
AZURE = ("azure-workers-000001",)
TALOS_LOCATION = {  # what Talos writes for its machine config's nodeAnnotations
    keys.TALOS_OWNED_ANNOTATIONS: json.dumps(
        [keys.KILO_LOCATION, keys.KILO_PERSISTENT_KEEPALIVE], separators=(",", ":")
    ),
    keys.TALOS_OWNED_LABELS: json.dumps(["topology.kubernetes.io/zone"]),
}


def kilo_keys(endpoint: str, internal: str) -> dict[str, str]:
    """What Kilo's agent writes on its node (granularity location, Cozystack's default)."""
    return {
        keys.KILO_KEY: KEY,
        keys.KILO_LAST_SEEN: SEEN,
        keys.KILO_ENDPOINT: f"{endpoint}:51820",
        keys.KILO_INTERNAL_IP: internal,
        keys.KILO_GRANULARITY: "location",
        keys.KILO_WIREGUARD_IP: "",
    }


def cozystack(apiserver: ApiServer, kubectl: KubectlRunner) -> None:
    """Nodes as Talos registers them and Kilo annotates them, then the docs' commands."""
    for i, name in enumerate(ON_PREM, start=1):
        apiserver.seed_node(
            name,
            labels={"topology.kubernetes.io/zone": "on-prem"},
            annotations=kilo_keys(f"192.168.100.{i}", f"192.168.100.{i}/24"),
            internal_ip=f"192.168.100.{i}",
            pod_cidr=f"10.244.{i}.0/24",
            control_plane=name.startswith("cozy-cp"),
        )
    cloud = [("hetzner-cloud", n, "cpx22", "198.51.100", "10.100.0") for n in HETZNER]
    cloud += [("azure", n, "Standard_D2s_v3", "203.0.113", "192.168.102") for n in AZURE]
    for i, (location, name, instance_type, public, private) in enumerate(cloud, start=1):
        apiserver.seed_node(
            name,
            labels={
                "topology.kubernetes.io/zone": location,
                "node.kubernetes.io/instance-type": instance_type,
            },
            annotations={
                keys.KILO_LOCATION: location,
                keys.KILO_PERSISTENT_KEEPALIVE: "20",
                **TALOS_LOCATION,
                **kilo_keys(f"{public}.{i}", f"{private}.{i}/24"),
            },
            internal_ip=f"{private}.{i}",
            external_ip=f"{public}.{i}",
            pod_cidr=f"10.244.{100 + i}.0/24",
        )
    kubectl(
        "annotate", "nodes", "-l", "topology.kubernetes.io/zone=on-prem",
        f"{keys.KILO_LOCATION}=on-prem",
    )  # fmt: skip
    kubectl(
        "annotate", "nodes", "-l", "topology.kubernetes.io/zone=on-prem",
        f"{keys.KILO_ALLOWED_LOCATION_IPS}=192.168.100.0/24",
    )  # fmt: skip
    kubectl(
        "annotate", "nodes", "-l", "topology.kubernetes.io/zone=azure",
        f"{keys.KILO_ALLOWED_LOCATION_IPS}=192.168.102.0/23",
    )  # fmt: skip


def nodes_json(kubectl: KubectlRunner) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]  # type: ignore[no-any-return]


def kilo_reading(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Kilo's own reading of the nodes (kilo-topo), every check-in taken as fresh."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, handle)
        handle.flush()
        done = subprocess.run(
            [os.environ["KILO_TOPO"], "--compact", "--last-seen", "fresh", handle.name],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    seen = json.loads(done.stdout)
    seen["topology"].pop("hostname", None)
    for node in seen["nodes"]:
        node.pop("diagnostics", None)
    return seen  # type: ignore[no-any-return]


def test_import_of_a_cozystack_cluster_set_up_by_hand(
    apiserver: ApiServer, kubectl: KubectlRunner, kubeconfig_path: Path, tmp_path: Path
) -> None:
    cozystack(apiserver, kubectl)
    out = tmp_path / "sites"
    result = topoctl("import", "--kubeconfig", kubeconfig_path, "--out", out, "--name", "cozy")
    assert result.exit_code == 0, result.output
    check_golden("cozystack", out, result.stdout)
    planned = topoctl("plan", out, "--kubeconfig", kubeconfig_path, "--format", "json")
    assert planned.exit_code == 0, planned.output
    assert_plan_changes_nothing_kilo_reads(json.loads(planned.stdout))

    before = nodes_json(kubectl)
    applied = topoctl("apply", out, "--kubeconfig", kubeconfig_path, "--yes")
    assert applied.exit_code == 0, applied.output
    after = nodes_json(kubectl)
    for old, new in zip(before, after, strict=True):  # Kubernetes reads them alike
        assert old["metadata"]["labels"] == new["metadata"]["labels"]
        assert old["spec"] == new["spec"]
        changed = {
            k
            for k in {*old["metadata"]["annotations"], *new["metadata"]["annotations"]}
            if old["metadata"]["annotations"].get(k) != new["metadata"]["annotations"].get(k)
        }
        assert all(k.startswith(keys.TOPOCTL) for k in changed), changed
    if os.environ.get("KILO_TOPO") and Path(os.environ["KILO_TOPO"]).is_file():
        assert kilo_reading(after) == kilo_reading(before)
    again = topoctl("plan", out, "--kubeconfig", kubeconfig_path, "--detailed-exitcode")
    assert again.exit_code == 0, again.output  # converged
