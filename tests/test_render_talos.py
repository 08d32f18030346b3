"""``topoctl render talos``: Talos patches that say exactly what ``topoctl apply`` writes.

The goldens under tests/golden/talos/ are the patches for the example sites
(``TOPOCTL_UPDATE_GOLDEN=1`` rewrites them). The cross-check applies the example
topology to a copy of the example snapshot through the real command line and compares
every annotation a node's patch carries with what apply wrote on that node.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.core.rendering.talos import KUBELET_LABELS, kubelet_may_set, talos_value
from reconciler.model import keys
from reconciler.model.state import TaintValue

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT / "sites"
GOLDEN = ROOT / "tests" / "golden" / "talos"
EXAMPLE_SITE_NAMES = ("azure-weu", "hetzner-fsn1", "onprem-ams1")


def topoctl(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"topoctl {args} crashed") from result.exception
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("site", EXAMPLE_SITE_NAMES)
def test_site_patches_match_their_golden(site: str) -> None:
    result = topoctl("render", "talos", SITES, "--site", site)
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{site}.yaml"
    if os.environ.get("TOPOCTL_UPDATE_GOLDEN") == "1":
        golden.write_text(result.output)
    assert result.output == golden.read_text()


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _applied(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The example snapshot after `topoctl apply` of the example sites: nodes by name."""
    nodes = tmp_path / "nodes.yaml"
    shutil.copy(ROOT / "examples" / "nodes.yaml", nodes)
    result = topoctl("apply", SITES, "--cluster", nodes, "--yes")
    assert result.exit_code == 0, result.output
    return {n["metadata"]["name"]: n for n in yaml.safe_load(nodes.read_text())["items"]}


def test_every_annotation_in_a_patch_is_what_apply_writes(tmp_path: Path) -> None:
    applied = _applied(tmp_path)
    checked = 0
    for site in EXAMPLE_SITE_NAMES:
        result = topoctl("render", "talos", SITES, "--site", site, "--format", "json")
        assert result.exit_code == 0, result.output
        for target, patch in json.loads(result.output).items():
            annotations = patch["machine"].get("nodeAnnotations", {})
            if "/" in target:  # a pool: its members got at least the pool's values
                members = [n for n in applied.values() if _owned_by_pool(n, target)]
            else:
                members = [applied[target]] if target in applied else []
            for node in members:
                live = node["metadata"]["annotations"]
                assert {k: live.get(k) for k in annotations} == annotations, target
                checked += 1
                if "/" not in target:  # and a named node's patch holds all of them
                    written = {k for k in live if k.startswith(keys.KILO) and _declared(node, k)}
                    assert written <= set(annotations), target
    assert checked >= 5  # every listed node of the snapshot, and the pool members


def _owned_by_pool(node: dict[str, Any], target: str) -> bool:
    site, pool = target.split("/")
    name = node["metadata"]["name"]
    return node["metadata"]["annotations"].get(keys.KILO_LOCATION) == site and (
        (pool == "workers" and name.startswith("fsn1-worker-"))
        or (pool == "gpu" and name.startswith("weu-gpu-"))
    )


def _declared(node: dict[str, Any], key: str) -> bool:
    """Whether topoctl's ownership record lists the annotation (it wrote it from git)."""
    record = json.loads(node["metadata"]["annotations"].get(keys.TOPOCTL_OWNED, "{}"))
    return key in record.get("annotations", ())


def test_a_pool_member_gets_its_pools_patch() -> None:
    by_name = topoctl("render", "talos", SITES, "--node", "fsn1-worker-abcde", "--format", "json")
    by_site = topoctl("render", "talos", SITES, "--site", "hetzner-fsn1", "--format", "json")
    assert by_name.exit_code == 0, by_name.output
    assert json.loads(by_name.output) == json.loads(by_site.output)["hetzner-fsn1/workers"]


def test_one_node_in_json_is_the_patch_itself_and_yaml_says_the_same() -> None:
    as_json = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1", "--format", "json")
    as_yaml = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1")
    patch = json.loads(as_json.output)
    assert _documents(as_yaml.output) == [patch]
    machine = patch["machine"]
    assert machine["kubelet"] == {"extraArgs": {"cloud-provider": "external"}}
    assert machine["nodeAnnotations"][keys.KILO_FORCE_INTERNAL_IP].endswith("/32")
    assert machine["nodeAnnotations"][keys.KILO_LEADER] == "true"
    assert as_yaml.output.startswith("# for node fsn1-gw-1 in site hetzner-fsn1\n")


def test_labels_the_kubelet_may_not_set_are_left_to_the_controller() -> None:
    result = topoctl("render", "talos", SITES, "--site", "hetzner-fsn1")
    for doc in _documents(result.output):
        assert all(kubelet_may_set(k) for k in doc["machine"].get("nodeLabels", {}))
    assert "left to the controller: node-role.kubernetes.io/worker" in result.output


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("topology.kubernetes.io/zone", True),
        ("topology.kubernetes.io/region", True),
        ("kubernetes.io/hostname", True),
        ("node.kubernetes.io/instance-type", True),
        ("node.kubernetes.io/anything", True),
        ("sub.node.kubernetes.io/x", True),
        ("kubelet.kubernetes.io/x", True),
        ("disktype", True),
        ("example.com/rack", True),
        ("node-role.kubernetes.io/worker", False),
        ("node-restriction.kubernetes.io/x", False),
        ("a.node-restriction.kubernetes.io/x", False),
        ("kubernetes.io/role", False),
        ("k8s.io/x", False),
        ("foo.k8s.io/x", False),
        ("notkubernetes.io/x", True),
    ],
)
def test_node_restriction_rules(key: str, allowed: bool) -> None:
    assert kubelet_may_set(key) is allowed


@settings(max_examples=200, derandomize=True)
@given(
    st.sampled_from(["kubernetes.io", "k8s.io", "example.com", "node.kubernetes.io"]),
    st.sampled_from(["", "a.", "x-y."]),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
)
def test_kubernetes_namespaces_need_the_kubelet_list(domain: str, sub: str, name: str) -> None:
    key = f"{sub}{domain}/{name}"
    restricted = domain in ("kubernetes.io", "k8s.io")
    assert kubelet_may_set(key) is (not restricted or key in KUBELET_LABELS)


def test_taints_in_talos_form(tmp_path: Path) -> None:
    assert talos_value(TaintValue("gpu", "NoSchedule", "true")) == "true:NoSchedule"
    assert talos_value(TaintValue("dedicated", "NoExecute")) == "NoExecute"
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "s.yaml").write_text(
        "apiVersion: topoctl.io/v1alpha1\nkind: Site\nmetadata: {name: s}\nspec:\n"
        "  taints:\n"
        "    - {key: dedicated, value: edge, effect: NoSchedule}\n"
        "    - {key: dedicated, value: edge, effect: NoExecute}\n"
        "  nodes:\n    - name: n-1\n"
    )
    result = topoctl("render", "talos", sites, "--node", "n-1")
    assert result.exit_code == 0, result.output
    (doc,) = _documents(result.output)
    assert doc["machine"]["nodeTaints"] == {"dedicated": "edge:NoExecute"}
    assert "left to the controller: dedicated:NoSchedule" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "give exactly one of --node NAME or --site SITE"),
        (("--node", "a", "--site", "b"), 2, "give exactly one of --node NAME or --site SITE"),
        (("--node", "nobody"), 1, "node 'nobody' is not listed in any site"),
        (("--site", "mars"), 1, "no site named 'mars' (sites: azure-weu, hetzner-fsn1, onprem"),
    ],
)
def test_clear_errors(args: tuple[str, ...], code: int, message: str) -> None:
    result = topoctl("render", "talos", SITES, *args)
    assert result.exit_code == code
    assert message in result.output
