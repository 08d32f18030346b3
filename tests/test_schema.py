"""schema/topology.schema.json: up to date with the models, and agreeing with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from reconciler.core.loading.yamldoc import parse
from reconciler.core.rendering.schema import topology_schema_text
from reconciler.model import topology as t
from tests.test_topology_properties import dumped, topologies

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "schema" / "topology.schema.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(validator: Draft202012Validator, document: Any) -> list[str]:
    """Every schema error, including the ones under a oneOf (the Cluster | Site choice)."""
    found = []
    for error in validator.iter_errors(document):
        for e in [error, *error.context]:
            found.append(f"{'/'.join(map(str, e.absolute_path))}: {e.message}")
    return found


def test_schema_file_is_up_to_date() -> None:
    assert SCHEMA_FILE.exists(), f"{SCHEMA_FILE} is missing: run `make schema`"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == topology_schema_text(), (
        "schema/topology.schema.json is stale: the models changed. Regenerate it with "
        "`make schema` (topoctl schema > schema/topology.schema.json) and commit it."
    )


def example_documents() -> list[Any]:
    documents = []
    for path in sorted((REPO / "sites").glob("*.yaml")):
        parsed, diagnostics = parse(str(path), path.read_bytes())
        assert diagnostics == []
        documents += [(f"{path.name}#{doc.index}", doc.data) for doc in parsed]
    return documents


EXAMPLES = example_documents()


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_sites_match_the_schema(
    validator: Draft202012Validator, name: str, document: Any
) -> None:
    assert problems(validator, document) == []


def test_every_example_file_was_checked() -> None:
    kinds = [document["kind"] for _, document in EXAMPLES]
    assert kinds.count("Cluster") == 1
    assert kinds.count("Site") >= 1
    assert len(EXAMPLES) == len(list((REPO / "sites").glob("*.yaml")))  # one document each


SITE = {"apiVersion": t.API_VERSION, "kind": "Site", "metadata": {"name": "edge"}}


@pytest.mark.parametrize(
    ("document", "why"),
    [
        pytest.param({**SITE, "spec": {"nodse": []}}, "nodse", id="unknown-field"),
        pytest.param(
            {"kind": "Site", "metadata": {"name": "edge"}}, "apiVersion", id="no-apiVersion"
        ),
        pytest.param({**SITE, "kind": "Location"}, "kind", id="unknown-kind"),
        pytest.param({**SITE, "metadata": {"name": "Edge_1"}}, "name", id="site-name-pattern"),
        pytest.param({**SITE, "spec": {"persistentKeepalive": 0}}, "0", id="keepalive-range"),
        pytest.param(
            {**SITE, "spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}},
            "Sometimes",
            id="taint-effect",
        ),
        pytest.param(
            {**SITE, "spec": {"routes": [{"to": "10.0.0.0/8", "table": 0}]}}, "table", id="table"
        ),
        pytest.param(
            {"apiVersion": t.API_VERSION, "kind": "Cluster", "spec": {"mesh": {"port": 0}}},
            "0",
            id="cluster-mesh-port",
        ),
    ],
)
def test_schema_refuses_what_the_loader_refuses(
    validator: Draft202012Validator, document: dict[str, Any], why: str
) -> None:
    found = problems(validator, document)
    assert found, f"the schema accepts {document}"
    assert any(why in p for p in found), found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topology=topologies(), exclude_defaults=st.booleans())
def test_every_valid_document_matches_the_schema(
    validator: Draft202012Validator,
    topology: tuple[t.Cluster | None, list[t.Site]],
    exclude_defaults: bool,
) -> None:
    cluster, sites = topology
    models: list[t.Cluster | t.Site] = [*([cluster] if cluster else []), *sites]
    for model in models:
        document = dumped(model, exclude_defaults=exclude_defaults)
        assert problems(validator, document) == [], document
