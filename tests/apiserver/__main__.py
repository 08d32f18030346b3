"""`python -m tests.apiserver [--port N] [--nodes FILE]`: serve the double until interrupted.

The first stdout line is the URL (`http://127.0.0.1:PORT`), flushed before anything
else is printed, so a script can read it and point kubectl or topoctl at it:

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
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
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
        server.start(port=args.port)
    except OSError as err:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {err.strerror}", file=sys.stderr)
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
