"""List and watch options checked as kube-apiserver checks them (422 Invalid ListOptions).

The rules of k8s.io/apimachinery/pkg/apis/meta/internalversion/validation
(ValidateListOptions, validateWatchOptions) with the WatchList feature on, as in
Kubernetes 1.32: `sendInitialEvents` is for watches only and needs
`resourceVersionMatch=NotOlderThan`; a watch takes `resourceVersionMatch` only with
`sendInitialEvents`; a list takes it only with a `resourceVersion`, and never with
`continue`. A watch-list (`sendInitialEvents=true`) gets its initial state as ADDED
events and then, when it allowed bookmarks, the BOOKMARK annotated
`k8s.io/initial-events-end` (tests/apiserver/server.py streams them).
"""

from __future__ import annotations

from tests.apiserver import errors

_MATCHES = ("Exact", "NotOlderThan")
_NEEDS_NOT_OLDER = "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
_WATCH_NEEDS_SEND = (
    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
)
_LIST_NEEDS_RV = "resourceVersionMatch is forbidden unless resourceVersion is provided"
_NOT_WITH_CONTINUE = "resourceVersionMatch is forbidden when continue is provided"
_NOT_EXACT_ZERO = 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'


def _forbidden(field: str, detail: str) -> tuple[str, str, str]:
    return (field, "FieldValueForbidden", f"Forbidden: {detail}")


def _not_supported(field: str, value: str, allowed: tuple[str, ...]) -> tuple[str, str, str]:
    listed = ", ".join(f'"{a}"' for a in allowed)
    return (
        field,
        "FieldValueNotSupported",
        f'Unsupported value: "{value}": supported values: {listed}',
    )


def validate(query: dict[str, str], *, watch: bool) -> None:
    """Raise 422 Invalid (kind ListOptions, group meta.k8s.io) for options the server refuses."""
    match = query.get("resourceVersionMatch") or ""
    send_initial = query.get("sendInitialEvents") not in (None, "")
    resumed = bool(query.get("continue"))
    rvm = "resourceVersionMatch"
    causes = []
    if watch:
        if send_initial and match != "NotOlderThan":
            causes.append(_forbidden(rvm, _NEEDS_NOT_OLDER))
        if match and not send_initial:
            causes.append(_forbidden(rvm, _WATCH_NEEDS_SEND))
        if match and match != "NotOlderThan":
            causes.append(_not_supported(rvm, match, ("NotOlderThan",)))
        if match and resumed:
            causes.append(_forbidden(rvm, _NOT_WITH_CONTINUE))
    else:
        if match and not query.get("resourceVersion"):
            causes.append(_forbidden(rvm, _LIST_NEEDS_RV))
        if match and resumed:
            causes.append(_forbidden(rvm, _NOT_WITH_CONTINUE))
        if match and match not in _MATCHES:
            causes.append(_not_supported(rvm, match, (*_MATCHES, "")))
        if match == "Exact" and query.get("resourceVersion") == "0":
            causes.append(_forbidden(rvm, _NOT_EXACT_ZERO))
        if send_initial:
            causes.append(
                _forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
            )
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)
