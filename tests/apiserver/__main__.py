"""`python -m tests.apiserver [--host ADDR] [--port N] [--nodes FILE]`: serve the double.

The first stdout line is the URL (`http://ADDR:PORT`, ADDR 127.0.0.1 by default),
flushed before anything else is printed, so a script can read it and point kubectl or
topoctl at it; `--host` takes an address of this network namespace that other
namespaces reach (a bridge's or a veth's), so processes in them can use the double:

    python -m tests.apiserver --nodes examples/nodes.yaml > url.txt &
    kubectl --server "$(head -1 url.txt)" get nodes

SIGINT or SIGTERM stops it cleanly (exit 0). A bad nodes file: exit 2, nothing served.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tests.apiserver.loading import NodesFileError, load_nodes
from tests.apiserver.server import ApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.apiserver", description=__doc__)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free)")
    parser.add_argument(
        "--nodes", type=Path, help="`kubectl get nodes -o json|yaml` output to serve"
    )
    args = parser.parse_args(argv)
    server = ApiServer()
    if args.nodes is not None:
        try:
            nodes = load_nodes(args.nodes)
        except NodesFileError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        server.seed(*nodes)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start(port=args.port, host=args.host)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 2
    print(server.url, flush=True)
    print(
        f"serving {len(server.nodes())} nodes; SIGINT or SIGTERM stops it",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
