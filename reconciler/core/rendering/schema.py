"""The JSON Schema of a topology document, generated from the models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from reconciler.model.topology import Document

SCHEMA_ID = "https://topoctl.io/schema/v1alpha1/topology.schema.json"


def topology_schema() -> dict[str, Any]:
    """One schema for any document of a ``sites/*.yaml`` file (Cluster or Site, by kind)."""
    schema = TypeAdapter(Document).json_schema(by_alias=True, mode="validation")
    for kind in ("Cluster", "Site"):  # the loader requires both header fields
        definition = schema["$defs"][kind]
        definition["required"] = sorted({"apiVersion", "kind", *definition.get("required", [])})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "topoctl topology document (Cluster or Site)",
        **schema,
    }


def topology_schema_text() -> str:
    """The schema as stable, pretty JSON text (what ``schema/`` holds)."""
    return json.dumps(topology_schema(), indent=2, sort_keys=True) + "\n"
