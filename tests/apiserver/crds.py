"""CustomResourceDefinitions: a created CRD serves its resource at once, a deleted one stops.

`apiextensions.k8s.io/v1` CustomResourceDefinition is a resource of the double like the
built-in ones (typed round trip against the bundled schema, status subresource, the
same resourceVersion, 409 and watch semantics). Every served version of a stored CRD
becomes a `ResourceType` that the double routes, lists in discovery (so kubectl finds it
by plural, singular, kind or short name) and stores. The versions of one CRD share one
storage: with the conversion strategy `None` the real server rewrites only apiVersion,
and so does the double.

Custom objects, as kube-apiserver treats them (apiextensions-apiserver's customresource
registry):
- get/list/watch/create/update/patch/delete/deletecollection, cluster or namespaced
  scope (a namespaced one needs its namespace, and goes with it);
- `metadata.generation`: 1 on create, +1 on every write that changes anything but
  metadata (and status, when the version has the status subresource);
- with `subresources.status`: a create drops status, a main write keeps the old status,
  a `/status` write keeps everything else of the old object, metadata included;
- JSON patch and merge patch; strategic merge patch is 415 with the real message;
- schemaless beyond apiVersion, kind and metadata, as under
  `x-kubernetes-preserve-unknown-fields: true`: the openAPIV3Schema is stored, not
  enforced (no pruning, defaulting, validation or CEL rules).

The CRD itself: names defaulted (`singular` from kind, `listKind`), conversion `None`,
`metadata.generation`, and the status the real controllers write at once
(`acceptedNames`, `storedVersions`, conditions NamesAccepted and Established).
Validation: the name is `<plural>.<group>`, a group with a dot, the scope, names, at
least one version, unique version names, exactly one storage version, a schema per
version. Deleting a CRD deletes its objects (watchers get their DELETED events, then
their watch ends) and stops serving the resource.

Not implemented: conversion webhooks, the scale subresource, additionalPrinterColumns
(tables show Name and Age), categories, selectableFields, the Terminating phase of a
deleted CRD (its DELETED event comes first, then its objects' events), and
NamesAccepted=False for two CRDs that claim one plural (the first registered serves).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tests.apiserver import resources, schema, validation
from tests.apiserver.resources import ResourceType

JSON = dict[str, Any]
Cause = validation.Cause

GROUP = "apiextensions.k8s.io"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_KUBE_VERSION = re.compile(r"v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def version_priority(name: str) -> tuple[int, int, int, str]:
    """Sort key of kube-aware version ordering: GA before beta before alpha, newer first,
    then versions that do not look like Kubernetes versions, alphabetically."""
    match = _KUBE_VERSION.fullmatch(name)
    if match is None:
        return (3, 0, 0, name)
    major = int(match.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, "")


# --------------------------------------------------------------- generation


def _bump_generation(new: JSON, old: JSON | None, ignored: frozenset[str]) -> None:
    """metadata.generation: 1 on create, +1 when anything outside `ignored` changed."""
    meta = new.setdefault("metadata", {})
    if old is None:
        meta["generation"] = 1
        return
    previous = int(_meta(old).get("generation") or 1)
    skip = ignored | {"metadata", "kind", "apiVersion"}
    keys = (set(new) | set(old)) - skip
    changed = any(new.get(k) != old.get(k) for k in keys)
    meta["generation"] = previous + 1 if changed else previous


# ------------------------------------------------------------ custom objects


def conform_custom(obj: JSON) -> tuple[JSON, schema.Conformance]:
    """A custom object after the server's decoding: metadata as ObjectMeta (unknown fields
    dropped, timestamps normalised), apiVersion and kind strings, the rest untouched."""
    report = schema.Conformance()
    for key in ("apiVersion", "kind"):
        if key in obj and not isinstance(obj[key], str):
            report.errors.append(f"{key}: expected a string")
    out = dict(obj)
    meta, meta_report = schema.conform_object(_meta(obj), _OBJECT_META)
    report.unknown.extend(f"metadata.{u}" for u in meta_report.unknown)
    report.errors.extend(f"metadata.{e}" for e in meta_report.errors)
    out["metadata"] = meta
    return out, report


def _keep_for_custom(new: JSON, old: JSON, subresource: str | None) -> None:
    """customResourceStrategy / statusStrategy: a main write keeps the old status; a /status
    write keeps everything but status of the old object, metadata included."""
    if subresource == "status":
        status = new.get("status")
        rv = _meta(new).get("resourceVersion")
        new.clear()
        new.update(schema.clone_doc(old))
        new["metadata"] = {**_meta(new), "resourceVersion": rv}
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = status
    elif "status" in old:
        new["status"] = old["status"]
    else:
        new.pop("status", None)


def _custom_prepare(status_subresource: bool) -> Any:
    ignored = frozenset({"status"}) if status_subresource else frozenset()

    def prepare(new: JSON, old: JSON | None) -> None:
        if old is None and status_subresource:
            new.pop("status", None)  # create cannot set status
        _bump_generation(new, old, ignored)

    return prepare


def served_types(crd: JSON, *, served_only: bool = True) -> list[ResourceType]:
    """The ResourceTypes a stored CRD serves: one per version with `served: true` (or,
    with `served_only=False`, one per version)."""
    spec = _dict(crd.get("spec"))
    names = _dict(spec.get("names"))
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    kind = str(names.get("kind") or "")
    out = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or (served_only and not version.get("served")):
            continue
        status = "status" in _dict(version.get("subresources"))
        out.append(
            ResourceType(
                group=group,
                version=str(version.get("name") or ""),
                kind=kind,
                plural=plural,
                singular=str(names.get("singular") or kind.lower()),
                namespaced=spec.get("scope") == "Namespaced",
                definition="",
                storage=_meta(crd).get("name", f"{plural}.{group}"),
                short_names=tuple(str(s) for s in names.get("shortNames") or ()),
                status_subresource=status,
                prepare=_custom_prepare(status),
                split_write=_keep_for_custom,
                custom=True,
            )
        )
    return sorted(out, key=lambda rt: version_priority(rt.version))


# ------------------------------------------------------------------ the CRD


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return validation._invalid(field, value, detail)


def _required(field: str, detail: str = "") -> Cause:
    return (field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def _dns1035(field: str, value: str) -> list[Cause]:
    if len(value) <= 63 and _DNS1035_LABEL.fullmatch(value):
        return []
    return [
        _invalid(
            field,
            value,
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character",
        )
    ]


def validate_crd(obj: JSON) -> list[Cause]:
    """The parts of ValidateCustomResourceDefinition a test can trip over."""
    errs: list[Cause] = []
    spec = _dict(obj.get("spec"))
    names = _dict(spec.get("names"))
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = _meta(obj).get("name", "")
    if name != f"{plural}.{group}":
        errs.append(_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(_required("spec.group"))
    elif "." not in group:
        errs.append(_invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        errs.extend(validation.dns_subdomain("spec.group", group))
    scope = spec.get("scope") or ""
    if scope not in ("Cluster", "Namespaced"):
        if not scope:
            errs.append(_required("spec.scope"))
        else:
            errs.append(
                (
                    "spec.scope",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
                )
            )
    for key in ("plural", "kind", "listKind"):
        if not names.get(key):
            errs.append(_required(f"spec.names.{key}"))
    if plural:
        errs.extend(_dns1035("spec.names.plural", plural))
    if names.get("singular"):
        errs.extend(_dns1035("spec.names.singular", names["singular"]))
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    if not versions:
        errs.append(_required("spec.versions", "must have at least one version"))
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        vname = version.get("name") or ""
        if not vname:
            errs.append(_required(f"{path}.name"))
        else:
            errs.extend(_dns1035(f"{path}.name", vname))
            if vname in seen:
                errs.append((f"{path}.name", "FieldValueInvalid", "must be unique"))
            seen.add(vname)
        if not _dict(version.get("schema")).get("openAPIV3Schema"):
            errs.append(_required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
    if versions and sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(
            _invalid(
                "spec.versions",
                [v.get("name") for v in versions],
                "must have exactly one version marked as storage version",
            )
        )
    return errs


def _condition(type_: str, reason: str, message: str, old: JSON | None) -> JSON:
    stamp = _now()
    for cond in _dict(_dict(old).get("status")).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_ and cond.get("status") == "True":
            stamp = cond.get("lastTransitionTime") or stamp
    return {
        "type": type_,
        "status": "True",
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def prepare_crd(new: JSON, old: JSON | None) -> None:
    """Defaults, generation, and the status the CRD controllers set (names accepted,
    established, storedVersions kept from before plus the storage version)."""
    spec = new.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind") or ""
    if kind:
        names.setdefault("singular", kind.lower())
        names.setdefault("listKind", f"{kind}List")
    spec.setdefault("conversion", {"strategy": "None"})
    _bump_generation(new, old, frozenset({"status"}))
    stored = list(_dict(_dict(old).get("status")).get("storedVersions") or [])
    for version in spec.get("versions") or []:
        name = version.get("name") if isinstance(version, dict) else None
        if name and version.get("storage") and name not in stored:
            stored.append(name)
    accepted = {
        k: names[k]
        for k in ("plural", "singular", "shortNames", "kind", "listKind", "categories")
        if names.get(k)
    }
    new["status"] = {
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", old),
            _condition(
                "Established", "InitialNamesAccepted", "the initial names have been accepted", old
            ),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    }


def _keep_crd_status(new: JSON, old: JSON, subresource: str | None) -> None:
    """The CRD's status is the controllers' (prepare_crd recomputes it); a /status write
    changes nothing else."""
    if subresource == "status":
        _keep_for_custom(new, old, subresource)


CUSTOM_RESOURCE_DEFINITIONS = ResourceType(
    group=GROUP,
    version="v1",
    kind="CustomResourceDefinition",
    plural="customresourcedefinitions",
    singular="customresourcedefinition",
    namespaced=False,
    definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    storage="customresourcedefinitions",
    short_names=("crd", "crds"),
    status_subresource=True,
    validate=validate_crd,
    prepare=prepare_crd,
    split_write=_keep_crd_status,
)


# ------------------------------------------------------------------ registry


class TypeRegistry:
    """The resource types one double serves: the built-in ones plus every stored CRD's.

    Readers get an immutable snapshot (`all()`); `update` swaps it under a lock.
    """

    def __init__(self, builtins: Sequence[ResourceType]) -> None:
        self._builtins = tuple(builtins)
        self._lock = threading.Lock()
        self._custom: dict[str, tuple[ResourceType, ...]] = {}  # storage (CRD name) -> types
        self._storages: dict[str, ResourceType] = {}  # storage -> a type of it, served or not
        self._all: tuple[ResourceType, ...] = self._builtins

    def all(self) -> tuple[ResourceType, ...]:
        """Every served type: built-in first, then custom ones by group, version priority."""
        return self._all

    def custom_storages(self) -> dict[str, ResourceType]:
        """The storages of the stored CRDs, each with one of its types (served or not): a
        CRD keeps its storage while it exists, even with no version served."""
        return dict(self._storages)

    def update(self, crds: Iterable[JSON]) -> None:
        """Serve exactly what `crds` (every stored CRD) define; a plural another CRD or a
        built-in type already serves is not served twice."""
        custom: dict[str, tuple[ResourceType, ...]] = {}
        storages: dict[str, ResourceType] = {}
        taken = {(rt.group, rt.version, rt.plural) for rt in self._builtins}
        for crd in sorted(crds, key=lambda c: _meta(c).get("creationTimestamp", "")):
            storage = _meta(crd).get("name", "")
            served = []
            for rt in served_types(crd):
                if (rt.group, rt.version, rt.plural) not in taken:
                    taken.add((rt.group, rt.version, rt.plural))
                    served.append(rt)
            custom[storage] = tuple(served)
            every = served_types(crd, served_only=False)
            if every:
                storages[storage] = every[0]
        ordered = sorted(
            (rt for types in custom.values() for rt in types),
            key=lambda rt: (rt.group, version_priority(rt.version), rt.plural),
        )
        with self._lock:
            self._custom = custom
            self._storages = storages
            self._all = self._builtins + tuple(ordered)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at /api(s)/group/version/plural, if any."""
        return resources.lookup(group, version, plural, self._all)

    def by_kind(self, kind_or_plural: str, api_version: str | None = None) -> ResourceType:
        """A served type by kind or plural (KeyError when none)."""
        return resources.by_kind(kind_or_plural, api_version, self._all)

    # discovery documents over the current types
    def api_group_list(self) -> JSON:
        """GET /apis."""
        return resources.api_group_list(self._all)

    def api_group(self, group: str) -> JSON | None:
        """GET /apis/{group}."""
        return resources.api_group(group, self._all)

    def api_resource_list(self, group: str, version: str) -> JSON | None:
        """GET /api/v1 or /apis/{group}/{version}."""
        return resources.api_resource_list(group, version, self._all)
