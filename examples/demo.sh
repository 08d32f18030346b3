#!/usr/bin/env bash
# The demo `make demo` runs: validate the example topology, plan it against a copy of
# the example node snapshot, apply, and plan again - which finds nothing left to do.
# Then the controller (examples/demo-controller.sh): `topoctl run` against the
# API-server double and a local git repository. No cluster needed, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/nodes.yaml "$work/nodes.yaml"

step() { printf '\n\033[1m== %s\033[0m\n\n' "$*"; }

step "1. topoctl validate sites/"
topoctl validate sites/

step "2. topoctl plan sites/ --cluster nodes.yaml   (a copy of examples/nodes.yaml)"
topoctl plan sites/ --cluster "$work/nodes.yaml"

step "3. topoctl apply sites/ --cluster nodes.yaml --yes"
topoctl apply sites/ --cluster "$work/nodes.yaml" --yes > "$work/apply.log"
tail -n 1 "$work/apply.log"
echo "(the same plan as above; the snapshot file was rewritten atomically)"

step "4. topoctl plan sites/ --cluster nodes.yaml --detailed-exitcode   (again)"
status=0
topoctl plan sites/ --cluster "$work/nodes.yaml" --detailed-exitcode || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo: expected nothing left to do after apply, got exit $status" >&2
  exit 1
fi
echo
echo "Converged: a second plan has nothing to write (exit 0 with --detailed-exitcode)."

# Part two: the controller, following a git repository and watching the nodes.
bash examples/demo-controller.sh
