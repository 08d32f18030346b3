"""ValidatingAdmissionPolicy, enforced as kube-apiserver enforces it, CEL by cel-python.

For a write (create, update, patch, delete) the double computes the object it would
store (the same write, dry run) and, before storing it, asks every
ValidatingAdmissionPolicyBinding whose policy matches the request: the policy's
``matchConstraints`` and the binding's ``matchResources`` (resourceRules with
``group/version/operation/resource[/subresource]`` and ``*``, excludeResourceRules,
objectSelector, namespaceSelector), then its ``matchConditions``, then its
``variables`` and ``validations``, with the variables bound as the API server binds
them: ``object`` and ``oldObject`` (null for a create or a delete), ``request`` (kind,
resource, subResource, name, namespace, operation - a PATCH is an UPDATE - userInfo,
dryRun, options), ``params`` (null), ``namespaceObject``, ``variables``. A failed
validation of a binding with the ``Deny`` action refuses the request with the code of
its ``reason`` (Forbidden 403, default Invalid 422) and kube-apiserver's message:
``nodes "n2" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied
request: ...``. An expression that cannot be evaluated refuses it under
``failurePolicy: Fail`` (the default) and is skipped under ``Ignore``.

Requests without a token (the double's admin) are ``system:admin`` of
``system:masters``, as a cluster's admin kubeconfig would be. Nothing is checked while
no binding exists, so the writes of tests without policies cost nothing more.

Not modelled: paramKind/paramRef (refused with 500), the ``authorizer`` variable,
Warn/Audit actions beyond ignoring them, the API server's CEL cost limits, and type
checking against the resources' schemas (cel-python evaluates untyped, as the API server
does with ``object`` before its type-checking controller has looked).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from tests.apiserver import errors
from tests.apiserver.errors import ApiError
from tests.apiserver.rbac import Attributes, selector_text
from tests.apiserver.resources import (
    NAMESPACES,
    VALIDATING_POLICIES,
    VALIDATING_POLICY_BINDINGS,
    ResourceType,
)
from tests.apiserver.selectors import labels_match, parse_label_selector
from tests.apiserver.store import Store

JSON = dict[str, Any]
ADMIN = {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]}
_CODES = {"Forbidden": 403, "Invalid": 422, "Unauthorized": 401, "RequestEntityTooLarge": 413}
_OPERATIONS = {"create": "CREATE", "update": "UPDATE", "patch": "UPDATE", "delete": "DELETE"}
WRITES = frozenset(_OPERATIONS)  # the verbs admission reviews


class _EvaluationError(Exception):
    """An expression could not be evaluated."""


@functools.cache
def _program(expression: str) -> Any:
    env = celpy.Environment()
    try:
        return env.program(env.compile(expression))
    except CELParseError as err:
        raise _EvaluationError(f"compilation failed: {err}") from None


def evaluate(expression: str, activation: Mapping[str, Any]) -> Any:
    """One CEL expression over JSON-like variables; _EvaluationError when it cannot be evaluated."""
    try:
        result = _program(expression).evaluate(activation)
    except CELEvalError as err:
        raise _EvaluationError(str(err.args[0] if err.args else err)) from None
    if isinstance(result, CELEvalError):
        raise _EvaluationError(str(result.args[0] if result.args else result))
    return result


@dataclass(frozen=True)
class Request:
    """What admission knows of one write."""

    rt: ResourceType
    operation: str  # CREATE | UPDATE | DELETE
    name: str
    namespace: str
    subresource: str
    user: JSON
    dry_run: bool


def request_for(
    rt: ResourceType, verb: str, attrs: Attributes | None, route_name: str, namespace: str,
    subresource: str, dry_run: bool,
) -> Request | None:  # fmt: skip
    """The admission request of a write (None for what admission never sees)."""
    operation = _OPERATIONS.get(verb)
    if operation is None:
        return None
    if attrs is None:
        user: JSON = dict(ADMIN)
    else:
        info = attrs.user
        user = {"username": info.name, "uid": info.uid, "groups": list(info.groups)}
        if info.extra:
            user["extra"] = {k: list(v) for k, v in info.extra.items()}
    return Request(rt, operation, route_name, namespace, subresource, user, dry_run)


def _rule_matches(rule: JSON, req: Request) -> bool:
    rt = req.rt
    ops = rule.get("operations") or []
    if "*" not in ops and req.operation not in ops:
        return False
    groups, versions = rule.get("apiGroups") or [], rule.get("apiVersions") or []
    if "*" not in groups and rt.group not in groups:
        return False
    if "*" not in versions and rt.version not in versions:
        return False
    scope = rule.get("scope") or "*"
    if scope != "*" and scope != ("Namespaced" if rt.namespaced else "Cluster"):
        return False
    wanted = rt.plural + (f"/{req.subresource}" if req.subresource else "")
    for resource in rule.get("resources") or []:
        if resource in ("*/*", wanted):
            return True
        main, _, sub = resource.partition("/")
        if not sub and main == "*" and not req.subresource:
            return True
        if sub and main == "*" and sub == req.subresource:
            return True
        if sub == "*" and main == rt.plural:
            return True
    return False


def _selected(selector: JSON | None, labels: Mapping[str, str] | None) -> bool:
    if not selector:
        return True
    return labels_match(parse_label_selector(selector_text(selector)), labels)


class Admission:
    """The stored ValidatingAdmissionPolicies and their bindings, applied to writes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def active(self) -> bool:
        """Whether any binding exists (no binding: nothing to evaluate)."""
        return bool(self.store.objects(VALIDATING_POLICY_BINDINGS))

    def _matches(self, match: JSON | None, req: Request, obj: JSON | None) -> bool:
        if not match:
            return True
        rules = match.get("resourceRules")
        if rules is not None and not any(_rule_matches(r, req) for r in rules):
            return False
        if any(_rule_matches(r, req) for r in match.get("excludeResourceRules") or []):
            return False
        labels = ((obj or {}).get("metadata") or {}).get("labels")
        if not _selected(match.get("objectSelector"), labels):
            return False
        if req.rt.namespaced and req.namespace:
            found = self.store.objects(NAMESPACES)
            ns = next((n for n in found if n["metadata"]["name"] == req.namespace), None)
            ns_labels = ((ns or {}).get("metadata") or {}).get("labels")
            return _selected(match.get("namespaceSelector"), ns_labels)
        return True

    def review(self, req: Request, obj: JSON | None, old: JSON | None) -> None:
        """Refuse (ApiError) what a binding with the Deny action does not admit."""
        subject = obj if obj is not None else old
        for binding in self.store.objects(VALIDATING_POLICY_BINDINGS):
            spec = binding.get("spec") or {}
            if "Deny" not in (spec.get("validationActions") or []):
                continue
            try:
                policy = self.store.get(VALIDATING_POLICIES, None, spec.get("policyName") or "")
            except ApiError:
                continue  # a binding to a missing policy admits everything
            pspec = policy.get("spec") or {}
            if not self._matches(pspec.get("matchConstraints"), req, subject):
                continue
            if not self._matches(spec.get("matchResources"), req, subject):
                continue
            if pspec.get("paramKind"):
                raise ApiError(500, "the API double does not support paramKind in policies")
            denial = self._denial(pspec, req, obj, old)
            if denial is not None:
                reason, message = denial
                raise self._refusal(policy, binding, req, subject, reason, message)

    def _activation(self, req: Request, obj: JSON | None, old: JSON | None) -> dict[str, Any]:
        rt = req.rt
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        gvr = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        options = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}
        request = {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "subResource": req.subresource,
            "requestKind": gvk,
            "requestResource": gvr,
            "requestSubResource": req.subresource,
            "name": req.name,
            "namespace": req.namespace,
            "operation": req.operation,
            "userInfo": req.user,
            "dryRun": req.dry_run,
            "options": {"kind": options[req.operation], "apiVersion": "meta.k8s.io/v1"},
        }
        namespace_object = None
        if rt.namespaced and req.namespace:
            found = [
                n for n in self.store.objects(NAMESPACES) if n["metadata"]["name"] == req.namespace
            ]
            namespace_object = found[0] if found else None
        plain = {
            "object": obj,
            "oldObject": old,
            "request": request,
            "params": None,
            "namespaceObject": namespace_object,
        }
        return {k: json_to_cel(v) for k, v in plain.items()}

    def _denial(
        self, spec: JSON, req: Request, obj: JSON | None, old: JSON | None
    ) -> tuple[str, str] | None:
        """(reason, message) of the first failed validation, or None when admitted."""
        fail_closed = (spec.get("failurePolicy") or "Fail") == "Fail"
        activation = self._activation(req, obj, old)
        try:
            for condition in spec.get("matchConditions") or []:
                if not evaluate(condition["expression"], activation):
                    return None
            variables: dict[Any, Any] = {}
            for variable in spec.get("variables") or []:  # in order: each sees the earlier
                activation["variables"] = celpy.celtypes.MapType(variables)
                name = celpy.celtypes.StringType(variable["name"])
                variables[name] = evaluate(variable["expression"], activation)
            activation["variables"] = celpy.celtypes.MapType(variables)
            for validation in spec.get("validations") or []:
                if evaluate(validation["expression"], activation):
                    continue
                reason = validation.get("reason") or "Invalid"
                if validation.get("messageExpression"):
                    message = str(evaluate(validation["messageExpression"], activation))
                else:
                    message = validation.get("message") or (
                        f"failed expression: {validation['expression']}"
                    )
                return reason, " ".join(str(message).split())
        except _EvaluationError as err:
            if fail_closed:
                return "Invalid", f"expression could not be evaluated: {err}"
        return None

    def _refusal(
        self, policy: JSON, binding: JSON, req: Request, obj: JSON | None, reason: str, message: str
    ) -> ApiError:
        what = (
            f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
            f"'{binding['metadata']['name']}' denied request: {message}"
        )
        name = req.name or ((obj or {}).get("metadata") or {}).get("name", "")
        code = _CODES.get(reason, 422)
        rt = req.rt
        if code == 403:
            return ApiError(
                403,
                f'{errors.qualified(rt.plural, rt.group)} "{name}" is forbidden: {what}',
                details={
                    "name": name,
                    **({"group": rt.group} if rt.group else {}),
                    "kind": rt.plural,
                },
            )
        return errors.invalid(rt.kind, rt.group, name, [("", "FieldValueInvalid", what)])
