"""``topoctl render talos``: Talos patches that say exactly what ``topoctl apply`` writes,
in the form of the Talos version they are for.

The goldens under tests/golden/talos/<version>/ are the patches for the example sites
(``TOPOCTL_UPDATE_GOLDEN=1`` rewrites them). The cross-check applies the example
topology to a copy of the example snapshot through the real command line and compares
every annotation a node's patch carries with what apply wrote on that node. Every
document rendered is checked against the Talos configuration schema of its version
(tests/talos/schemas/, whose README names the source), merged as Talos merges a patch
into the documents ``talosctl gen config`` writes.
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
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from referencing import Registry, Resource

from reconciler.cli import main
from reconciler.core.rendering.talos import KUBELET_LABELS, kubelet_may_set, talos_value
from reconciler.core.rendering.talos_versions import NEWEST_TALOS, TalosVersionError, talos_form
from reconciler.model import keys
from reconciler.model.state import TaintValue

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT / "sites"
GOLDEN = ROOT / "tests" / "golden" / "talos"
SCHEMAS = ROOT / "tests" / "talos" / "schemas"
EXAMPLE_SITE_NAMES = ("azure-weu", "hetzner-fsn1", "onprem-ams1")
VERSIONS = ("1.13", "1.14")


def topoctl(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"topoctl {args} crashed") from result.exception
    assert "Traceback" not in result.output
    return result


# --- the Talos configuration schema of each version ----------------------------------


def schema_of(version: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"v{version}" / "config.schema.json").read_text())  # type: ignore[no-any-return]


def definition_of(document: dict[str, Any]) -> str:
    """The schema definition a config document is checked against (Talos picks it by
    apiVersion and kind; the v1alpha1 config has neither)."""
    if "kind" not in document:
        return "v1alpha1.Config"
    return f"k8s.{document['kind']}V1Alpha1"


def check_talos_schema(version: str, document: dict[str, Any]) -> None:
    """Raise ValidationError unless the document is one Talos ``version`` takes."""
    schema = schema_of(version)
    name = definition_of(document)
    if {"$ref": f"#/$defs/{name}"} not in schema["oneOf"]:
        raise ValidationError(f"Talos {version} has no {name} document")
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    Draft202012Validator({"$ref": f"{schema['$id']}#/$defs/{name}"}, registry=registry).validate(
        document
    )


def generated(version: str) -> list[dict[str, Any]]:
    """The documents of a worker's config as `talosctl gen config` writes them for the
    version, as far as a patch from topoctl reaches them."""
    if talos_form(version) == "documents":
        return [
            {
                "apiVersion": "v1alpha1",
                "kind": "KubeletConfig",
                "image": "ghcr.io/siderolabs/kubelet:v1.36.0",
            },
            {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig"},
        ]
    return [
        {
            "version": "v1alpha1",
            "machine": {
                "type": "worker",
                "kubelet": {"image": "ghcr.io/siderolabs/kubelet:v1.35.0"},
            },
        }
    ]


def merged(base: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Talos's merge of a strategic-merge patch for what topoctl writes: a document goes
    into the base document of the same kind (maps merged key by key), else it is added."""

    def merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        out = dict(into)
        for key, value in extra.items():
            old = out.get(key)
            out[key] = (
                merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
            )
        return out

    out = [dict(d) for d in base]
    for doc in patch:
        same = next((i for i, d in enumerate(out) if d.get("kind") == doc.get("kind")), None)
        if same is None:
            out.append(doc)
        else:
            out[same] = merge(out[same], doc)
    return out


def check_patch(version: str, patch: list[dict[str, Any]]) -> None:
    """The patch, and the config it makes, against the version's schema; never both forms."""
    for document in merged(generated(version), patch):
        check_talos_schema(version, document)
    kinds = {definition_of(d) for d in patch}
    if talos_form(version) == "documents":
        assert kinds == {"k8s.KubeNodeConfigV1Alpha1", "k8s.KubeletConfigV1Alpha1"}
    else:
        assert kinds == {"v1alpha1.Config"}
    for document in patch:
        if document.get("kind") == "KubeNodeConfig":
            check_talos_schema(version, document)  # required fields: its own suffice


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("site", EXAMPLE_SITE_NAMES)
def test_site_patches_match_their_golden_and_the_schema_of_their_version(
    site: str, version: str
) -> None:
    result = topoctl("render", "talos", SITES, "--site", site, "--talos-version", version)
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"v{version}" / f"{site}.yaml"
    if os.environ.get("TOPOCTL_UPDATE_GOLDEN") == "1":
        golden.write_text(result.output)
    assert result.output == golden.read_text()
    by_target = json.loads(
        topoctl(
            "render", "talos", SITES, "--site", site, "--talos-version", version, "--format", "json"
        ).output
    )
    for patch in by_target.values():
        check_patch(version, patch if isinstance(patch, list) else [patch])


def test_the_default_is_the_newest_talos() -> None:
    default = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1").output
    newest = topoctl(
        "render", "talos", SITES, "--node", "fsn1-gw-1", "--talos-version", NEWEST_TALOS
    )
    assert default == newest.output
    assert "kind: KubeNodeConfig" in default and "machine:" not in default


@pytest.mark.parametrize(
    ("version", "form"),
    [
        ("1.14", "documents"),
        ("v1.14.0", "documents"),
        ("1.14.0-beta.0", "documents"),
        ("1.15", "documents"),
        ("1.13", "machine"),
        ("v1.13.2", "machine"),
        ("1.8", "machine"),
    ],
)
def test_talos_versions_and_their_form(version: str, form: str) -> None:
    assert talos_form(version) == form


@pytest.mark.parametrize("version", ["1.7", "2.0", "fourteen", "1", ""])
def test_a_version_without_a_known_form_is_refused(version: str) -> None:
    with pytest.raises(TalosVersionError):
        talos_form(version)
    result = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1", "--talos-version", version)
    assert result.exit_code == 2 and "--talos-version" in result.output


@pytest.mark.parametrize(
    ("version", "document"),
    [
        # the 1.14 form for a Talos that does not have it
        ("1.13", {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig", "labels": {"a": "b"}}),
        # a field name Talos does not know
        ("1.14", {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig", "nodeLabels": {"a": "b"}}),
        # values must be text
        ("1.14", {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig", "taints": {"t": 1}}),
        ("1.13", {"machine": {"nodeAnnotations": {"a": True}}}),
        ("1.13", {"machine": {"kubelet": {"extraArg": {"cloud-provider": "external"}}}}),
        # a KubeletConfig without the image the generated one carries
        ("1.14", {"apiVersion": "v1alpha1", "kind": "KubeletConfig", "extraArgs": {}}),
    ],
)
def test_the_schema_check_refuses_what_talos_refuses(
    version: str, document: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        check_talos_schema(version, document)


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _annotations(patch: Any) -> dict[str, str]:
    """The node annotations a patch sets, in either form."""
    if isinstance(patch, list):
        node = next(d for d in patch if d.get("kind") == "KubeNodeConfig")
        return dict(node.get("annotations", {}))
    return dict(patch["machine"].get("nodeAnnotations", {}))


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
            annotations = _annotations(patch)
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
    old = ("--talos-version", "1.13")
    as_json = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1", "--format", "json", *old)
    as_yaml = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1", *old)
    patch = json.loads(as_json.output)
    assert _documents(as_yaml.output) == [patch]
    machine = patch["machine"]
    assert machine["kubelet"] == {"extraArgs": {"cloud-provider": "external"}}
    assert machine["nodeAnnotations"][keys.KILO_FORCE_INTERNAL_IP].endswith("/32")
    assert machine["nodeAnnotations"][keys.KILO_LEADER] == "true"
    assert as_yaml.output.startswith("# for node fsn1-gw-1 in site hetzner-fsn1\n")


def test_the_two_forms_say_the_same_and_never_both() -> None:
    new = json.loads(
        topoctl("render", "talos", SITES, "--node", "fsn1-gw-1", "--format", "json").output
    )
    old = json.loads(
        topoctl(
            "render",
            "talos",
            SITES,
            "--node",
            "fsn1-gw-1",
            "--format",
            "json",
            "--talos-version",
            "1.13",
        ).output
    )
    node, kubelet = new
    assert node["kind"] == "KubeNodeConfig" and kubelet["kind"] == "KubeletConfig"
    assert "machine" not in node and "machine" not in kubelet
    assert node["annotations"] == old["machine"]["nodeAnnotations"]
    assert node["labels"] == old["machine"]["nodeLabels"]
    assert kubelet["extraArgs"] == old["machine"]["kubelet"]["extraArgs"]
    text = topoctl("render", "talos", SITES, "--node", "fsn1-gw-1").output
    assert text.startswith("# for node fsn1-gw-1 in site hetzner-fsn1\n")
    assert [d["kind"] for d in _documents(text)] == ["KubeNodeConfig", "KubeletConfig"]


@pytest.mark.parametrize("version", VERSIONS)
def test_labels_the_kubelet_may_not_set_are_left_to_the_controller(version: str) -> None:
    result = topoctl("render", "talos", SITES, "--site", "hetzner-fsn1", "--talos-version", version)
    for doc in _documents(result.output):
        labels = doc.get("labels") or doc.get("machine", {}).get("nodeLabels", {})
        assert all(kubelet_may_set(k) for k in labels)
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
    result = topoctl("render", "talos", sites, "--node", "n-1", "--talos-version", "1.13")
    assert result.exit_code == 0, result.output
    (doc,) = _documents(result.output)
    assert doc["machine"]["nodeTaints"] == {"dedicated": "edge:NoExecute"}
    assert "left to the controller: dedicated:NoSchedule" in result.output
    newest = topoctl("render", "talos", sites, "--node", "n-1", "--format", "json")
    node, _ = json.loads(newest.output)
    assert node["taints"] == {"dedicated": "edge:NoExecute"}
    check_patch(NEWEST_TALOS, json.loads(newest.output))


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


@pytest.mark.parametrize("granularity", ["full", "cross"])
def test_per_node_granularity_leaves_the_allowed_ips_to_the_controller(
    tmp_path: Path, granularity: str
) -> None:
    """Under full or cross granularity the site's allowed IPs go on one member Kilo counts
    as Ready, which only the live cluster says: no machine config pins them."""
    sites = tmp_path / "sites"
    shutil.copytree(SITES, sites)
    cluster = sites / "cluster.yaml"
    cluster.write_text(
        cluster.read_text().replace("granularity: location", f"granularity: {granularity}")
    )
    for directory, carried in ((SITES, True), (sites, False)):
        result = topoctl("render", "talos", directory, "--site", "hetzner-fsn1", "--format", "json")
        assert result.exit_code == 0, result.output
        patches = json.loads(result.output)
        found = [t for t, p in patches.items() if keys.KILO_ALLOWED_LOCATION_IPS in _annotations(p)]
        assert bool(found) is carried, (directory, found)
