"""Validation of ServiceAccounts and RBAC objects, as pkg/apis/rbac/validation says.

Names of RBAC objects are path segments (``system:discovery`` is valid), not DNS
subdomains; a binding's roleRef cannot change once created.
"""

from __future__ import annotations

from typing import Any

from tests.apiserver import errors
from tests.apiserver.validation import Cause, _invalid, _required

JSON = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"


def path_segment_name(field: str, name: str) -> list[Cause]:
    """path.IsValidPathSegmentName: anything but `.`, `..`, and names with `/` or `%`."""
    if name in (".", ".."):
        return [_invalid(field, name, f"may not be '{name}'")]
    for bad in ("/", "%"):
        if bad in name:
            return [_invalid(field, name, f"may not contain '{bad}'")]
    return []


def _rules(obj: JSON, *, namespaced: bool) -> list[Cause]:
    errs: list[Cause] = []
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            errs.append(
                (
                    f"{path}.verbs",
                    "FieldValueRequired",
                    "Required value: verbs must contain at least one value",
                )
            )
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                errs.append(
                    _invalid(
                        f"{path}.nonResourceURLs",
                        urls,
                        "namespaced rules cannot apply to non-resource URLs",
                    )
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errs.append(
                    _invalid(
                        f"{path}.nonResourceURLs",
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            errs.append(
                (
                    f"{path}.apiGroups",
                    "FieldValueRequired",
                    "Required value: resource rules must supply at least one api group",
                )
            )
        if not rule.get("resources"):
            errs.append(
                (
                    f"{path}.resources",
                    "FieldValueRequired",
                    "Required value: resource rules must supply at least one resource",
                )
            )
    return errs


def role(obj: JSON) -> list[Cause]:
    """ValidateRole: namespaced rules."""
    return _rules(obj, namespaced=True)


def cluster_role(obj: JSON) -> list[Cause]:
    """ValidateClusterRole: rules (aggregated roles may have none)."""
    return _rules(obj, namespaced=False)


def _binding(obj: JSON, kinds: tuple[str, ...], *, cluster: bool) -> list[Cause]:
    errs: list[Cause] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.append(
            (
                "roleRef.apiGroup",
                "FieldValueNotSupported",
                f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "{RBAC_GROUP}"',
            )
        )
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        errs.append(
            (
                "roleRef.kind",
                "FieldValueNotSupported",
                f'Unsupported value: "{ref.get("kind", "")}": supported values: {supported}',
            )
        )
    if not ref.get("name"):
        errs.append(_required("roleRef.name"))
    else:
        errs.extend(path_segment_name("roleRef.name", ref["name"]))
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        if not subject.get("name"):
            errs.append(_required(f"{path}.name"))
        kind = subject.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            errs.append(
                (
                    f"{path}.kind",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{kind or ""}": supported values: "ServiceAccount", '
                    '"User", "Group"',
                )
            )
        if kind == "ServiceAccount" and cluster and not subject.get("namespace"):
            errs.append(_required(f"{path}.namespace"))
    return errs


def role_binding(obj: JSON) -> list[Cause]:
    """ValidateRoleBinding: a Role or a ClusterRole, granted in the binding's namespace."""
    return _binding(obj, ("Role", "ClusterRole"), cluster=False)


def cluster_role_binding(obj: JSON) -> list[Cause]:
    """ValidateClusterRoleBinding: a ClusterRole only; service accounts name a namespace."""
    return _binding(obj, ("ClusterRole",), cluster=True)


def keep_role_ref(new: JSON, old: JSON | None) -> None:
    """ValidateRoleBindingUpdate: roleRef is immutable (delete and recreate instead)."""
    if old is not None and new.get("roleRef") != old.get("roleRef"):
        name = (new.get("metadata") or {}).get("name", "")
        raise errors.invalid(
            new.get("kind") or "RoleBinding",
            RBAC_GROUP,
            name,
            [_invalid("roleRef", new.get("roleRef"), "cannot change roleRef")],
        )
