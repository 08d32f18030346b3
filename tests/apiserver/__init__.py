"""A Kubernetes API-server double for adapter and integration tests.

A real HTTP server on 127.0.0.1 that the official `kubernetes` client and
`kubectl --server=...` talk to: Nodes (+ /status), Namespaces, Events (core
and events.k8s.io), Leases; a global resourceVersion with 409/410 semantics;
merge, JSON and strategic-merge patches; list/watch; fault hooks and a request
log. Start it with the `apiserver` fixture (tests/apiserver/fixtures.py) or
`with ApiServer() as server: ...`.
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
