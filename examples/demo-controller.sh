#!/usr/bin/env bash
# The controller part of `make demo`: `topoctl run` against the API-server double and a
# local git repository. A push converges the nodes, a joining node is annotated within a
# second, and `topoctl status` says what happened. Loopback only, no root; everything
# started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n\n' "$*"; }
free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_ok() { python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"; }
until_ok() {  # until_ok SECONDS COMMAND...: retry a command until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "demo: timed out waiting for: $*" >&2; exit 1; fi
    sleep 0.2
  done
}

step "5. an API server (the test double) with the nodes of examples/nodes.yaml"
python -m tests.apiserver --nodes examples/nodes.yaml > "$work/url" 2> "$work/apiserver.log" &
pids+=($!)
until_ok 10 test -s "$work/url"
url=$(head -n 1 "$work/url")
cat > "$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "$url"}}]
users: [{name: demo, user: {}}]
contexts: [{name: demo, context: {cluster: demo, user: demo, namespace: default}}]
current-context: demo
EOF
export KUBECONFIG="$work/kubeconfig"
echo "serving at $url"
# deploy/base's access rules (namespace, accounts, RBAC, admission policy), applied with
# kubectl as to a cluster (the double serves no OpenAPI documents: no client validation)
kubectl kustomize deploy/base | python -c '
import sys, yaml
kinds = {"Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
         "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
docs = [d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] in kinds]
yaml.safe_dump_all(docs, sys.stdout)' > "$work/rbac.yaml"
kubectl apply --validate=false -f "$work/rbac.yaml" | sed 's/^/  /'
# the controller runs as its own service account, with a token minted as the kubelet
# asks for a pod's (TokenRequest); the demo's other actors (Kilo, a kubelet) stay admin
token=$(python - <<'EOF'
from kubernetes import client, config
config.load_kube_config()
request = {"spec": {"expirationSeconds": 3600}}
core = client.CoreV1Api()
print(core.create_namespaced_service_account_token("topoctl", "topoctl-system", request).status.token)
EOF
)
sed "s/user: {}/user: {token: $token}/; s/namespace: default/namespace: topoctl-system/" \
  "$work/kubeconfig" > "$work/controller-kubeconfig"
# Kilo checks every node in every 30 s (kilo.squat.ai/last-seen), and its leader is a
# node that checked in within the last minute: a stand-in keeps them fresh, as Kilo would.
python - > "$work/heartbeat.log" 2>&1 <<'EOF' &
import time
from kubernetes import client, config
config.load_kube_config()
api = client.CoreV1Api()
while True:
    for node in api.list_node().items:
        stamp = {"metadata": {"annotations": {"kilo.squat.ai/last-seen": str(int(time.time()))}}}
        api.patch_node(node.metadata.name, stamp)
    time.sleep(10)
EOF
pids+=($!)

step "6. a git repository holding sites/, and topoctl run following it"
git init --quiet --bare "$work/topology.git"
git clone --quiet "$work/topology.git" "$work/checkout" 2>/dev/null
cp -r sites "$work/checkout/sites"
git -C "$work/checkout" -c user.name=demo -c user.email=demo@example.com add sites
git -C "$work/checkout" -c user.name=demo -c user.email=demo@example.com commit --quiet -m "the example sites"
git -C "$work/checkout" push --quiet origin HEAD:main 2>/dev/null
printf 'demo-secret' > "$work/webhook-secret"
port=$(free_port)
topoctl run --git-url "file://$work/topology.git" --cache-dir "$work/cache" \
  --kubeconfig "$work/controller-kubeconfig" --lease-namespace topoctl-system \
  --listen "127.0.0.1:$port" --identity demo-1 \
  --webhook-secret-file "$work/webhook-secret" --poll 1h > "$work/run.log" 2>&1 &
run_pid=$!
pids+=("$run_pid")
until_ok 20 http_ok "http://127.0.0.1:$port/readyz"
until_ok 20 topoctl plan "$work/checkout/sites" --detailed-exitcode
echo "ready; every node converged:"
grep -E "revision|wrote" "$work/run.log" | head -n 5 | sed 's/^/  /'
echo "  ... $(grep -c 'wrote' "$work/run.log" || true) node writes in all"

step "7. a push: hetzner-fsn1's persistentKeepalive 25 -> 20, announced by the webhook"
sed -i 's/persistentKeepalive: 25/persistentKeepalive: 20/' "$work/checkout/sites/hetzner.yaml"
git -C "$work/checkout" -c user.name=demo -c user.email=demo@example.com commit --quiet -am "fsn1: keepalive 20"
git -C "$work/checkout" push --quiet origin HEAD:main 2>/dev/null
python - "http://127.0.0.1:$port/hooks/git" <<'EOF'
import hashlib, hmac, sys, urllib.request
body = b'{"ref":"refs/heads/main"}'
signature = "sha256=" + hmac.new(b"demo-secret", body, hashlib.sha256).hexdigest()
headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
request = urllib.request.Request(sys.argv[1], body, headers)
print(f"  webhook: HTTP {urllib.request.urlopen(request, timeout=5).status}")
EOF
until_ok 10 topoctl plan "$work/checkout/sites" --detailed-exitcode
python - <<'EOF'
from kubernetes import client, config
config.load_kube_config()
for node in client.CoreV1Api().list_node().items:
    keepalive = (node.metadata.annotations or {}).get("kilo.squat.ai/persistent-keepalive")
    if node.metadata.name.startswith("fsn1-"):
        print(f"  {node.metadata.name}: persistent-keepalive {keepalive}")
EOF

step "8. a node joins: fsn1-worker-n3w7z registers, and is annotated"
python - <<'EOF'
import time
from kubernetes import client, config, watch
from tests.apiserver.builders import make_node
config.load_kube_config()
api = client.CoreV1Api()
node = make_node("fsn1-worker-n3w7z", internal_ip="10.10.0.77",
                 labels={"node.kubernetes.io/instance-type": "cx32"}, pod_cidr="10.244.9.0/24")
start = time.monotonic()
api.create_node(node)
for event in watch.Watch().stream(api.list_node, field_selector="metadata.name=fsn1-worker-n3w7z",
                                  timeout_seconds=10):
    annotations = event["object"].metadata.annotations or {}
    if "kilo.squat.ai/location" in annotations:
        took = time.monotonic() - start
        print(f"  annotated {took * 1000:.0f} ms after it registered: location "
              f"{annotations['kilo.squat.ai/location']}, keepalive "
              f"{annotations.get('kilo.squat.ai/persistent-keepalive')}")
        break
else:
    raise SystemExit("demo: the new node was not annotated within 10 s")
EOF

step "9. topoctl status"
topoctl status --lease-namespace topoctl-system

step "10. SIGTERM: the controller finishes its write, releases the lease, exits 0"
kill -TERM "$run_pid"
status=0
wait "$run_pid" || status=$?
tail -n 2 "$work/run.log" | sed 's/^/  /'
echo "topoctl run exited with $status"
if grep -q "forbidden" "$work/run.log"; then
  echo "demo: the shipped RBAC refused the controller a request:" >&2
  grep "forbidden" "$work/run.log" | head -n 3 >&2
  exit 1
fi
[ "$status" -eq 0 ]
