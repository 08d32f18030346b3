"""OpenAPI v3 discovery (`/openapi/v3`), as much of it as kubectl reads.

`kubectl create|apply|replace -f` first asks whether the server validates fields itself:
it reads `/openapi/v3` (an index of group-versions, each with a `serverRelativeURL`
carrying a content hash) and then the group-version's document, and looks for the
PATCH operation of the object's kind (`x-kubernetes-group-version-kind`) with a
`fieldValidation` query parameter. Found, it sends `fieldValidation=Strict` and leaves
validation to the server (the double answers unknown fields with 400); a group-version
that is not listed is looked up as a CRD, and Namespace's document answers for it. Without
this endpoint kubectl stops with "failed to download openapi".

So the documents list, for every served resource, its paths and operations with their
query parameters and kind, and no schemas (`components.schemas` is empty): kubectl's
client-side validation and `kubectl explain` are not served.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tests.apiserver.resources import ResourceType

JSON = dict[str, Any]

_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _param(name: str, where: str = "query") -> JSON:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": "string", "uniqueItems": True},
    }


def _op(rt: ResourceType, action: str, params: Sequence[str]) -> JSON:
    return {
        "operationId": f"{action}{rt.kind}",
        "parameters": [_param(p) for p in params],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }


def _gv_path(rt: ResourceType) -> str:
    return f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"


def _paths(rt: ResourceType) -> JSON:
    base = "/" + _gv_path(rt)
    collection = (
        f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else (f"{base}/{rt.plural}")
    )
    item = f"{collection}/{{name}}"
    scope = [_param("namespace", "path")] if rt.namespaced else []
    paths: JSON = {
        collection: {
            "parameters": scope,
            "get": _op(rt, "list", ("labelSelector", "fieldSelector", "limit", "watch")),
            "post": _op(rt, "post", _WRITE_PARAMS),
            "delete": _op(rt, "deletecollection", ("labelSelector", "fieldSelector")),
        },
        item: {
            "parameters": [_param("name", "path"), *scope],
            "get": _op(rt, "get", ()),
            "put": _op(rt, "put", _WRITE_PARAMS),
            "patch": _op(rt, "patch", (*_WRITE_PARAMS, "force")),
            "delete": _op(rt, "delete", ("dryRun", "gracePeriodSeconds")),
        },
    }
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "parameters": [_param("name", "path"), *scope],
            "get": _op(rt, "get", ()),
            "put": _op(rt, "put", _WRITE_PARAMS),
            "patch": _op(rt, "patch", (*_WRITE_PARAMS, "force")),
        }
    return paths


def documents(types: Sequence[ResourceType], version: str) -> dict[str, JSON]:
    """The document of every group-version, keyed by its path (`api/v1`, `apis/g/v`)."""
    docs: dict[str, JSON] = {}
    for rt in types:
        doc = docs.setdefault(
            _gv_path(rt),
            {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": version},
                "paths": {},
                "components": {"schemas": {}},
            },
        )
        doc["paths"].update(_paths(rt))
    return docs


def _hash(doc: JSON) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()


def index(types: Sequence[ResourceType], version: str) -> JSON:
    """GET /openapi/v3: each group-version with its hashed URL."""
    return {
        "paths": {
            gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(doc)}"}
            for gv, doc in documents(types, version).items()
        }
    }


def document(types: Sequence[ResourceType], version: str, gv: str) -> JSON | None:
    """GET /openapi/v3/<gv>, or None when that group-version is not served."""
    return documents(types, version).get(gv)
