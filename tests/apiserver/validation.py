"""The subset of kube-apiserver validation topoctl can trip over (answered as 422 Invalid).

Object names, label keys/values, annotation keys and total size, Node taints
and Lease durations follow k8s.io/apimachinery/pkg/util/validation and
pkg/apis/core/validation. Everything else is accepted as the typed round trip
leaves it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Cause = tuple[str, str, str]  # (field, reason, message)

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}")


def _required(field: str) -> Cause:
    return (field, "FieldValueRequired", "Required value")


def dns_subdomain(field: str, value: str) -> list[Cause]:
    """RFC 1123 subdomain (node, lease, event names)."""
    if len(value) > 253:
        return [_invalid(field, value, "must be no more than 253 characters")]
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return [
            _invalid(
                field,
                value,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def dns_label(field: str, value: str) -> list[Cause]:
    """RFC 1123 label (namespace names)."""
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        return [
            _invalid(
                field,
                value,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
            )
        ]
    return []


def qualified_name(field: str, key: str) -> list[Cause]:
    """`[prefix/]name` as used by label, annotation and taint keys."""
    parts = key.split("/")
    if len(parts) > 2:
        return [_invalid(field, key, "a qualified name must consist of alphanumeric characters")]
    name = parts[-1]
    errs: list[Cause] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append(_invalid(field, key, "prefix part must be non-empty"))
        else:
            errs.extend(
                (f, r, m.replace("Invalid value", "prefix part"))
                for f, r, m in dns_subdomain(field, prefix)
            )
    if not name:
        errs.append(_invalid(field, key, "name part must be non-empty"))
    elif len(name) > 63:
        errs.append(_invalid(field, key, "name part must be no more than 63 characters"))
    elif not _QUALIFIED_NAME.fullmatch(name):
        errs.append(
            _invalid(
                field,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character",
            )
        )
    return errs


def label_value(field: str, value: str) -> list[Cause]:
    """A label value: at most 63 characters, alphanumeric at both ends."""
    if len(value) > 63:
        return [_invalid(field, value, "must be no more than 63 characters")]
    if not _LABEL_VALUE.fullmatch(value):
        return [
            _invalid(
                field,
                value,
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def object_meta(
    meta: dict[str, Any],
    *,
    namespace_name: bool = False,
    name_check: Callable[[str, str], list[Cause]] | None = None,
) -> list[Cause]:
    """metadata.name (a DNS subdomain unless `name_check` says otherwise), labels and
    annotations."""
    errs: list[Cause] = []
    name = meta.get("name") or ""
    if not name:
        errs.append(_required("metadata.name"))
    else:
        check = name_check or (dns_label if namespace_name else dns_subdomain)
        errs.extend(check("metadata.name", name))
    for key, value in (meta.get("labels") or {}).items():
        errs.extend(qualified_name("metadata.labels", key))
        errs.extend(label_value("metadata.labels", value))
    total = 0
    for key, value in (meta.get("annotations") or {}).items():
        errs.extend(qualified_name("metadata.annotations", key.lower()))
        total += len(key.encode()) + len(value.encode())  # Go's len: bytes, not characters
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(
            (
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes",
            )
        )
    return errs


def node(obj: dict[str, Any]) -> list[Cause]:
    """Node spec.taints: key, value and effect rules, no duplicate key+effect."""
    errs: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate((obj.get("spec") or {}).get("taints") or []):
        path = f"spec.taints[{i}]"
        key = taint.get("key") or ""
        if not key:
            errs.append(_required(f"{path}.key"))
        else:
            errs.extend(qualified_name(f"{path}.key", key))
        if taint.get("value"):
            errs.extend(label_value(f"{path}.value", taint["value"]))
        effect = taint.get("effect") or ""
        if not effect:
            errs.append(_required(f"{path}.effect"))
        elif effect not in _TAINT_EFFECTS:
            supported = ", ".join(f'"{e}"' for e in _TAINT_EFFECTS)
            errs.append(
                (
                    f"{path}.effect",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{effect}": supported values: {supported}',
                )
            )
        if (key, effect) in seen:
            errs.append(
                (
                    f"{path}",
                    "FieldValueDuplicate",
                    "Duplicate value: "
                    + json.dumps({"key": key, "effect": effect}, separators=(",", ":")),
                )
            )
        seen.add((key, effect))
    return errs


def lease(obj: dict[str, Any]) -> list[Cause]:
    """Lease spec: positive duration, non-negative transitions."""
    errs: list[Cause] = []
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.append(
            _invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    return errs


MAX_CONFIGMAP_SIZE = 1024 * 1024  # corev1.MaxSecretSize, shared by ConfigMaps
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def config_key(field: str, key: str) -> list[Cause]:
    """validation.IsConfigMapKey."""
    problems = []
    if len(key) > 253:
        problems.append("must be no more than 253 characters")
    if not _CONFIG_KEY.fullmatch(key):
        problems.append(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')"
        )
    if key == ".":
        problems.append("must not be '.'")
    elif key == "..":
        problems.append("must not be '..'")
    elif key.startswith(".."):
        problems.append("must not start with '..'")
    return [_invalid(field, key, p) for p in problems]


def configmap(obj: dict[str, Any]) -> list[Cause]:
    """ValidateConfigMap: keys, no key in both maps, values at most 1 MiB in total."""
    errs: list[Cause] = []
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    total = 0
    for key, value in data.items():
        errs.extend(config_key(f"data[{key}]", key))
        if key in binary:
            errs.append(_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(str(value).encode())
    for key, value in binary.items():
        errs.extend(config_key(f"binaryData[{key}]", key))
        if key in data:
            errs.append(_invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        total += _decoded_len(str(value))
    if total > MAX_CONFIGMAP_SIZE:
        errs.append(
            ("[]", "FieldValueTooLong", f"Too long: must have at most {MAX_CONFIGMAP_SIZE} bytes")
        )
    return errs


def _decoded_len(encoded: str) -> int:
    """Bytes of a base64 value (binaryData is []byte, base64 in JSON)."""
    stripped = encoded.rstrip("=")
    return len(stripped) * 3 // 4
