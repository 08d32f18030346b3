"""Service-account tokens and RBAC, as kube-apiserver authenticates and authorizes.

Authentication: ``POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`` (the
TokenRequest subresource, what the kubelet asks for a pod's projected token) mints a
token for an existing ServiceAccount, optionally bound to a Node (the node's name then
reaches admission as ``authentication.kubernetes.io/node-name``, as for a pod-bound
token since Kubernetes 1.32). A request carrying ``Authorization: Bearer <token>`` is
that service account: username ``system:serviceaccount:NS:NAME``, groups
``system:serviceaccounts``, ``system:serviceaccounts:NS``, ``system:authenticated``. An
unknown or expired token, or one whose ServiceAccount or bound Node is gone (or was
recreated under another uid), gets 401 Unauthorized. The token is an opaque random
string, not a signed JWT: clients treat it as opaque, and the double looks it up. A
request without a token is the double's admin and is never checked, so tests written
before RBAC existed here are unchanged.

Authorization follows plugin/pkg/auth/authorizer/rbac: the request's attributes come
from its path and method as RequestInfoFactory derives them (verb ``list`` vs ``watch``
by the ``watch`` parameter, a ``metadata.name`` field selector naming the object,
``deletecollection``, the combined ``resource/subresource``, non-resource paths with the
lowercase HTTP method as verb); every ClusterRoleBinding, then every RoleBinding in the
request's namespace, whose subjects include the user (User, Group, or ServiceAccount,
whose namespace defaults to the binding's) contributes its role's rules; a rule allows
when its verbs (``*``), apiGroups (``*``), resources (``*``, ``*/subresource``),
resourceNames (empty: any) or nonResourceURLs (``*`` suffix) match. A binding whose role
is missing adds its error to the denial's reason, as the real authorizer does. A
ClusterRole with an aggregationRule has the rules of the ClusterRoles its selectors
match (what the aggregation controller writes into it). The default policy every
cluster bootstraps is stored from the start: ``cluster-admin`` (group system:masters)
and the roles every authenticated user holds, ``system:discovery``,
``system:basic-user`` and ``system:public-info-viewer`` (also unauthenticated). A
denial is 403 with the real Status body: ``nodes "x" is forbidden: User
"system:serviceaccount:ns:sa" cannot patch resource "nodes" in API group "" at the
cluster scope``.

Not modelled: impersonation, escalation checks on RBAC writes, the Node authorizer,
webhook authorizers, token audiences beyond recording them.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.apiserver import errors
from tests.apiserver.errors import ApiError
from tests.apiserver.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    NODES,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
)
from tests.apiserver.selectors import labels_match, parse_label_selector
from tests.apiserver.store import Store

JSON = dict[str, Any]
AUDIENCE = "https://kubernetes.default.svc.cluster.local"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"
NODE_UID_EXTRA = "authentication.kubernetes.io/node-uid"
CREDENTIAL_EXTRA = "authentication.kubernetes.io/credential-id"
MIN_EXPIRATION = 600  # seconds: TokenRequest refuses shorter lives
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True)
class UserInfo:
    """Who a request is (user.Info)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Attributes:
    """authorizer.Attributes of one request."""

    user: UserInfo
    verb: str
    path: str
    resource_request: bool = False
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclass(frozen=True)
class _Token:
    user: UserInfo
    expires: datetime
    account: tuple[str, str, str]  # namespace, name, uid
    bound: tuple[str, str] | None  # node name, uid


def _exact_name(field_selector: str | None) -> str:
    """fields.Selector.RequiresExactMatch("metadata.name"), if the selector requires one."""
    for term in (field_selector or "").split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                return value.strip()
    return ""


def request_attributes(
    user: UserInfo, method: str, path: str, query: Mapping[str, str]
) -> Attributes:
    """What RequestInfoFactory.NewRequestInfo makes of a request (k8s.io/apiserver)."""
    plain = Attributes(user, method.lower(), path)
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return plain
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return plain
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    if parts[0] == "watch" and len(parts) > 1:  # the legacy /watch/ paths
        verb, parts = "watch", parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    if not name and verb == "get":
        watch = query.get("watch")
        verb = "list" if watch is None or watch.lower() in ("false", "0") else "watch"
        selected = _exact_name(query.get("fieldSelector"))
        if selected and selected not in (".", "..") and not set(selected) & {"/", "%"}:
            name = selected
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user,
        verb,
        path,
        resource_request=True,
        group=group,
        version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


def _any(values: Iterable[str], wanted: str, wildcard: str = "*") -> bool:
    return any(v in (wildcard, wanted) for v in values)


def rule_allows(attrs: Attributes, rule: JSON) -> bool:
    """RuleAllows (plugin/pkg/auth/authorizer/rbac), over one PolicyRule."""
    if not _any(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        return any(
            url in ("*", attrs.path) or (url.endswith("*") and attrs.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    if not _any(rule.get("apiGroups") or [], attrs.group):
        return False
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    resources = rule.get("resources") or []
    if not any(
        r in ("*", combined) or (attrs.subresource and r == f"*/{attrs.subresource}")
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _applies(user: UserInfo, subject: JSON, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"system:serviceaccount:{sa_namespace}:{name}"
    return False


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """responsewriters.Forbidden: the message kube-apiserver answers a denial with."""
    who = attrs.user.name
    if not attrs.resource_request:
        message = f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        where = (
            f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        )
        message = (
            f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.group}" {where}'
        )
    if reason:
        message = f"{message}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        text = f"forbidden: {message}"
    else:
        qualified = errors.qualified(attrs.resource, attrs.group)
        text = (
            f'{qualified} "{attrs.name}" is forbidden: {message}'
            if attrs.name
            else (f"{qualified} is forbidden: {message}")
        )
    details: JSON = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.group:
        details["group"] = attrs.group
    if attrs.resource:
        details["kind"] = attrs.resource
    return ApiError(403, text, details=details)


def unauthorized() -> ApiError:
    """401, as the authentication filter answers a bad token."""
    return ApiError(401, "Unauthorized", reason="Unauthorized")


def _role(kind: str, name: str) -> str:
    return f'{kind.lower()}.rbac.authorization.k8s.io "{name}" not found'


def _bootstrap_role(name: str, rules: list[JSON]) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    }


def _bootstrap_binding(name: str, groups: list[str]) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups
        ],
    }


def _urls(*paths: str) -> JSON:
    return {"nonResourceURLs": list(paths), "verbs": ["get"]}


# plugin/pkg/auth/authorizer/rbac/bootstrappolicy: the roles every user is bound to
BOOTSTRAP_ROLES = (
    _bootstrap_role(
        "cluster-admin",
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    ),
    _bootstrap_role(
        "system:discovery",
        [
            _urls(
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            )
        ],
    ),
    _bootstrap_role(
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"],
            },
        ],
    ),
    _bootstrap_role(
        "system:public-info-viewer",
        [_urls("/healthz", "/livez", "/readyz", "/version", "/version/")],
    ),
)
BOOTSTRAP_BINDINGS = (
    _bootstrap_binding("cluster-admin", ["system:masters"]),
    _bootstrap_binding("system:discovery", [AUTHENTICATED]),
    _bootstrap_binding("system:basic-user", [AUTHENTICATED]),
    _bootstrap_binding("system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED]),
)


class Access:
    """The double's authenticator (service-account tokens) and RBAC authorizer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        for obj in (*BOOTSTRAP_ROLES, *BOOTSTRAP_BINDINGS):
            rt = CLUSTERROLES if obj["kind"] == "ClusterRole" else CLUSTERROLEBINDINGS
            store.create(rt, None, obj)

    # -------------------------------------------------------------- tokens

    def token_request(self, namespace: str, name: str, body: Any) -> JSON:
        """POST .../serviceaccounts/NAME/token: a TokenRequest answered with its token."""
        spec = (body or {}).get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            spec = {}
        account = self.store.get(SERVICEACCOUNTS, namespace, name)  # 404 when missing
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < MIN_EXPIRATION:
            raise errors.invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                [
                    (
                        "spec.expirationSeconds",
                        "FieldValueInvalid",
                        f"Invalid value: {seconds}: may not specify a duration less than "
                        "10 minutes",
                    )
                ],
            )
        extra: dict[str, tuple[str, ...]] = {}
        bound: tuple[str, str] | None = None
        ref = spec.get("boundObjectRef")
        if ref:
            if ref.get("kind") != "Node":
                raise errors.bad_request(
                    f"cannot bind token to {ref.get('kind')!r}: the double serves Node "
                    "bindings only (no Pods or Secrets)"
                )
            node = self.store.get(NODES, None, ref.get("name") or "")
            node_uid = node["metadata"]["uid"]
            if ref.get("uid") and ref["uid"] != node_uid:
                raise errors.conflict(
                    "nodes",
                    "",
                    ref["name"],
                    f"the UID in the bound object reference "
                    f"({ref['uid']}) does not match the UID in record ({node_uid})",
                )
            bound = (ref["name"], node_uid)
            extra = {NODE_NAME_EXTRA: (ref["name"],), NODE_UID_EXTRA: (node_uid,)}
        jti = str(uuid.uuid4())
        extra[CREDENTIAL_EXTRA] = (f"JTI={jti}",)
        issued = self.store.clock().astimezone(UTC)
        expires = issued + timedelta(seconds=seconds)
        user = UserInfo(
            f"system:serviceaccount:{namespace}:{name}",
            account["metadata"]["uid"],
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
            extra,
        )
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Token(
                user, expires, (namespace, name, account["metadata"]["uid"]), bound
            )
        out_spec: JSON = {
            "audiences": list(spec.get("audiences") or [AUDIENCE]),
            "expirationSeconds": seconds,
        }
        if ref:
            out_spec["boundObjectRef"] = {
                "kind": "Node",
                "apiVersion": "v1",
                "name": ref["name"],
                "uid": bound[1] if bound else "",
            }
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": out_spec,
            "status": {
                "token": token,
                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    def user(self, headers: Mapping[str, str]) -> UserInfo | None:
        """The request's user (None: no token, the admin); 401 for a token not valid now."""
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        with self._lock:
            found = self._tokens.get(token.strip())
        if found is None or self.store.clock() >= found.expires:
            raise unauthorized()
        namespace, name, uid = found.account
        if not self._still(SERVICEACCOUNTS, namespace, name, uid):
            raise unauthorized()
        if found.bound is not None and not self._still(NODES, None, *found.bound):
            raise unauthorized()
        return found.user

    def _still(self, rt: Any, namespace: str | None, name: str, uid: str) -> bool:
        try:
            return bool(self.store.get(rt, namespace, name)["metadata"].get("uid") == uid)
        except ApiError:
            return False

    # ------------------------------------------------------- authorization

    def check(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> Attributes | None:
        """Authenticate and authorize one request: its attributes when a token was sent
        (None for the admin), ApiError 401 or 403 when refused."""
        user = self.user(headers)
        if user is None:
            return None
        attrs = request_attributes(user, method, path, query)
        allowed, reason = self.authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
        return attrs

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """RBACAuthorizer.Authorize: (allowed, reason of a denial)."""
        problems: list[str] = []
        for rules in self._rules_for(attrs.user, attrs.namespace, problems):
            if any(rule_allows(attrs, rule) for rule in rules):
                return True, ""
        if not problems:
            return False, ""
        joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        return False, f"RBAC: {joined}"

    def _rules_for(
        self, user: UserInfo, namespace: str, problems: list[str]
    ) -> Iterable[list[JSON]]:
        for binding in self.store.objects(CLUSTERROLEBINDINGS):
            if any(_applies(user, s, "") for s in binding.get("subjects") or []):
                yield self._role_rules(binding.get("roleRef") or {}, "", problems)
        if namespace:
            for binding in self.store.objects(ROLEBINDINGS, namespace):
                if any(_applies(user, s, namespace) for s in binding.get("subjects") or []):
                    yield self._role_rules(binding.get("roleRef") or {}, namespace, problems)

    def _role_rules(self, ref: JSON, namespace: str, problems: list[str]) -> list[JSON]:
        kind, name = ref.get("kind") or "", ref.get("name") or ""
        try:
            if kind == "Role":
                return list(self.store.get(ROLES, namespace, name).get("rules") or [])
            if kind == "ClusterRole":
                return self._cluster_role_rules(self.store.get(CLUSTERROLES, None, name))
        except ApiError:
            problems.append(_role(kind, name))
            return []
        problems.append(f'unsupported role reference kind: "{kind}"')
        return []

    def _cluster_role_rules(self, role: JSON) -> list[JSON]:
        """A ClusterRole's rules; an aggregated one's are those of the roles it selects."""
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return list(role.get("rules") or [])
        rules: list[JSON] = []
        for selector in aggregation.get("clusterRoleSelectors") or []:
            requirements = parse_label_selector(selector_text(selector))
            for other in self.store.objects(CLUSTERROLES):
                if other.get("aggregationRule"):
                    continue
                if labels_match(requirements, (other.get("metadata") or {}).get("labels")):
                    rules.extend(r for r in other.get("rules") or [] if r not in rules)
        return rules


def selector_text(selector: JSON) -> str:
    """A metav1.LabelSelector as the text form the selector parser reads."""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)
