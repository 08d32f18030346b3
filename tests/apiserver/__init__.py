"""A Kubernetes API-server double for topoctl's adapter and integration tests.

A real HTTP/1.1 server on 127.0.0.1 (ephemeral port; `start(host=ADDR)` or
`--host ADDR` for an address other network namespaces reach) that the official
`kubernetes` client, `kubectl --server=http://127.0.0.1:PORT` and Kilo's agent
`kg` use as they would kube-apiserver. Test infrastructure only: never shipped.

Usage (fixtures from tests/apiserver/fixtures.py, enabled in tests/conftest.py)::

    def test_x(apiserver, kube_api, kubeconfig_path):
        apiserver.seed_node("gw-1", external_ip="198.51.100.7", labels={"site": "fra"})
        core = kubernetes.client.CoreV1Api(kube_api)
        ...
        assert apiserver.log.count(verb="patch", resource="nodes") == 1
        assert apiserver.node("gw-1")["metadata"]["annotations"][...] == ...

    apiserver.faults.fail(503, times=2, method="GET")   # 5xx burst
    apiserver.faults.throttle(retry_after=3, method="PATCH")  # 429 + Retry-After
    apiserver.faults.reset(method="PATCH")              # TCP RST, no answer
    apiserver.faults.reset(method="PUT", after=True)    # applied, answer lost
    apiserver.faults.latency(0.1, path="/nodes")        # added delay
    apiserver.faults.before(hook, method="PUT")         # e.g. a concurrent writer
    apiserver.drop_watches(abrupt=False)                # end open watches
    apiserver.compact()                                 # older watches get 410

Faithful to kube-apiserver (see tests/integration/test_apiserver_double.py):
- core/v1 Node (+ /status), Namespace, Event, ConfigMap, ServiceAccount (+ /token,
  the TokenRequest); coordination.k8s.io/v1 Lease; rbac.authorization.k8s.io/v1 Role,
  ClusterRole, RoleBinding, ClusterRoleBinding; admissionregistration.k8s.io/v1
  ValidatingAdmissionPolicy(Binding); events.k8s.io/v1 Event (same storage as core
  Events, converted); apiextensions.k8s.io/v1 CustomResourceDefinition, whose
  resources are served the moment it is created and stop when it is deleted
  (tests/apiserver/crds.py; Kilo's own CRD is in tests/apiserver/kilo-crds.yaml);
  discovery (/api, /apis, /api/v1, groups), /openapi/v3 as far as kubectl reads it
  (openapi.py), /version, /healthz; Tables for `kubectl get` (Accept: as=Table).
- A global, monotonically increasing resourceVersion; uid, creationTimestamp,
  generateName. A write whose result equals the stored object keeps the
  resourceVersion and emits no watch event.
- 409 Conflict on a stale metadata.resourceVersion in PUT/PATCH, on a body uid
  that differs in PUT, on failed DELETE preconditions; 409 AlreadyExists;
  404 NotFound; 422 Invalid (labels, annotations, names, taints, lease spec,
  missing resourceVersion on Lease PUT, failed json-patch ops); 400 for bad
  selectors/bodies; 500 for create with a resourceVersion; 415 for
  apply-patch (server-side apply is not implemented) and unknown media types.
- Strategies: Node/Namespace main writes keep the old status; /status writes
  keep the old spec (metadata changes through /status persist, as in the real
  nodeStatusStrategy). Leases and Events allow create-on-update; Leases refuse
  unconditional updates. Finalizers defer deletion (deletionTimestamp); new
  finalizers are refused once deleting.
- PATCH: merge-patch (RFC 7386), json-patch (`jsonpatch` library),
  strategic merge driven by the bundled OpenAPI patch metadata (merge keys,
  `$patch: delete|replace`, `$retainKeys`, `$deleteFromPrimitiveList/`,
  `$setElementOrder/`, list ordering as strategicpatch produces it).
- The typed round trip: unknown fields dropped with a `Warning` header (400
  with `fieldValidation=Strict`), wrong JSON types rejected, nulls and empty
  lists/maps omitted, Time/MicroTime re-rendered in UTC, numeric quantities
  as strings. `dryRun=All` computes without storing.
- LIST: label selectors (=, ==, !=, in, notin, exists, !key, >, <), field
  selectors (metadata.name/namespace plus each resource's own fields, 400 for
  others), limit/continue over a consistent snapshot (410 once compacted),
  remainingItemCount, resourceVersion / resourceVersionMatch=Exact (rebuilt
  from history), 504 for a resourceVersion from the future. Items carry no
  kind/apiVersion, as in real typed lists.
- WATCH: chunked JSON lines (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR);
  initial ADDED events without a resourceVersion (or with "0"); replay after
  a resourceVersion; objects entering/leaving a selector become ADDED/DELETED;
  allowWatchBookmarks (every `bookmark_interval` s), watch-list for every resource
  (sendInitialEvents=true&resourceVersionMatch=NotOlderThan: the initial state,
  then the BOOKMARK annotated k8s.io/initial-events-end, as client-go's informers
  and kg's wait for), timeoutSeconds; list/watch options checked as the real
  server checks them (listoptions.py, 422); after compaction an in-stream ERROR
  Status 410 Expired (the client retries once, then raises 410).

- Authentication by service-account tokens and RBAC authorization (tests/apiserver/rbac.py):
  `apiserver.token("ns", "sa", node="n1")` mints a token as TokenRequest does; a request
  carrying it is that account, checked against the stored Roles and bindings plus the
  bootstrap policy (401 for a bad token, 403 with kube-apiserver's message). A request
  without a token is the admin. kubectl sends no token over plain http: it stays admin.
- ValidatingAdmissionPolicies and their bindings (admissionregistration.k8s.io/v1,
  tests/apiserver/admission.py): every write is reviewed, on the object it would store,
  by the stored policies, their CEL evaluated by cel-python (403/422 with the real
  message).

Knowingly not implemented: server-side apply and managedFields, protobuf, OpenAPI
schemas (the /openapi/v3 documents list paths and operations, not schemas: kubectl's
client-side validation and `kubectl explain` are not served), admission webhooks and
mutating policies, impersonation, generation (but for CRDs and custom objects), graceful
deletion periods and propagation policies (no garbage collector), Namespace
Terminating phase (deleting a namespace removes its objects at once), the
legacy /watch/ paths, Quantity canonicalisation (`1000m` stays `1000m`),
zero-value fields Go would print (`"unschedulable": false` is not added),
Table output for watches, and validation beyond the fields listed above.

The official client's urllib3 pool retries idempotent requests (GET, PUT,
DELETE) on connection resets and honours Retry-After on 429/503 for them by
itself; faults on those methods may therefore be invisible to callers (the
request log shows every attempt). PATCH and POST are never retried by urllib3.
"""

from tests.apiserver.builders import make_lease, make_node
from tests.apiserver.errors import ApiError
from tests.apiserver.faults import Faults, LoggedRequest, RequestInfo, RequestLog, Rule
from tests.apiserver.server import ApiServer
from tests.apiserver.store import Store

__all__ = [
    "ApiError",
    "ApiServer",
    "Faults",
    "LoggedRequest",
    "RequestInfo",
    "RequestLog",
    "Rule",
    "Store",
    "make_lease",
    "make_node",
]
