"""`make mesh`: a real mesh, watched live while a node joins and a git push moves a leader.

Builds three locations (tests/mesh/harness.py: Kilo's own agent on userspace WireGuard in
network namespaces, `topoctl run` following a git repository, `topoctl agent` on every
node), then redraws once a second: each site with its members and Kilo's leader (the
node that routes through kilo0), every leader's tunnels with their last handshake, and
the ping matrix between the pod addresses of every node (green: answered). While it
runs, a worker joins (its Node created without any Kilo annotation) and a push moves
fra's pinned leader; the log under the picture says how long each took. Everything is
torn down at the end, or on Ctrl-C.

Root only (network namespaces, WireGuard, iptables) and Kilo's agent in KILO_KG
(`make mesh` takes ../shared/kilo/kg when it is there). In a terminal the picture is
redrawn in place; otherwise (a pipe, a CI log) each step prints one frame.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tests.mesh import topology
from tests.mesh.harness import Mesh, requirements
from tests.mesh.probe import Matrix, PingStream

LOCATIONS = topology.layout(("fra", 2, 1), ("ams", 1, 1), ("par", 1, 1))
TIMEOUT = 120.0


def files(fra_leader: str) -> dict[str, str]:
    return topology.files(LOCATIONS, leaders={"fra": [fra_leader]})


class Picture:
    """What a person watching the mesh wants to see, rebuilt from the live mesh."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.log: list[str] = []
        self.matrix = Matrix({})
        self.started = time.monotonic()

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:6.1f} s  {text}")

    def refresh(self) -> Group:
        self.matrix = self.mesh.ping_matrix(same_location=True, timeout=0.5)
        return Group(self._sites(), self._tunnels(), self._matrix(), self.log_text())

    def _sites(self) -> Table:
        table = Table(title="sites", title_justify="left", expand=False)
        for column in ("site", "members", "Kilo's leader"):
            table.add_column(column)
        leaders = self.mesh.kilo_leaders()
        for location in self.mesh.locations:
            members = [n for n, loc in self.mesh.location_of().items() if loc == location]
            led = leaders.get(location) or []
            table.add_row(
                location,
                ", ".join(members),
                Text(", ".join(led) or "none", style="bold green" if len(led) == 1 else "red"),
            )
        return table

    def _tunnels(self) -> Table:
        table = Table(title="WireGuard tunnels of the leaders", title_justify="left")
        for column in ("leader", "peer endpoint", "last handshake", "received", "sent"):
            table.add_column(column)
        names = {f"{n.addr.wan}:51820": n.name for n in self.mesh.nodes.values() if n.addr.wan}
        now = time.time()
        for led in self.mesh.kilo_leaders().values():
            for name in led:
                state = self.mesh.nodes[name].wg()
                for peer in state.peers if state else ():
                    age = now - peer.latest_handshake if peer.latest_handshake else None
                    table.add_row(
                        name,
                        f"{names.get(peer.endpoint or '', '?')} ({peer.endpoint})",
                        Text("never", style="red")
                        if age is None
                        else Text(f"{age:.0f} s ago", style="green" if age < 150 else "yellow"),
                        f"{peer.rx_bytes} B",
                        f"{peer.tx_bytes} B",
                    )
        return table

    def _matrix(self) -> Table:
        names = sorted(self.mesh.nodes, key=lambda n: (self.mesh.nodes[n].spec.location, n))
        table = Table(
            title=f"ping matrix (from row to column): {self.matrix}", title_justify="left"
        )
        table.add_column("from \\ to")
        for name in names:
            table.add_column(name, justify="center")
        for src in names:
            cells: list[Text] = []
            for dst in names:
                ok = self.matrix.results.get((src, dst))
                if ok is None:
                    cells.append(Text("·", style="dim"))
                else:
                    cells.append(Text("●", style="green") if ok else Text("✗", style="bold red"))
            table.add_row(src, *cells)
        return table

    def log_text(self) -> Text:
        """The last lines of the run's log."""
        return Text("\n".join(self.log[-8:]))


def run(console: Console) -> None:
    reason = requirements()
    if reason is not None:
        console.print(f"make mesh: {reason}")
        raise SystemExit(1)
    console.print("building 3 locations: namespaces, wireguard-go, kg, topoctl run and agents")
    with Mesh(LOCATIONS, topology=files("fra-gw-1")) as mesh:
        picture = Picture(mesh)
        picture.note(f"mesh built in {mesh.timings['started']:.1f} s; topoctl run started")
        live = Live(console=console, auto_refresh=False) if console.is_terminal else None

        def show() -> None:
            frame = picture.refresh()
            if live is not None:
                live.update(frame, refresh=True)

        def step(what: str, check: Callable[[], bool], since: float | None = None) -> float:
            began = time.monotonic() if since is None else since
            while True:
                show()  # a fresh matrix and leaders before every check
                if check():
                    break
                if time.monotonic() - began > TIMEOUT:
                    raise SystemExit(f"make mesh: timed out waiting for {what}")
                time.sleep(0.5)
            took = time.monotonic() - began
            picture.note(f"{what}: {took:.1f} s")
            if live is None:
                console.print(picture.refresh())
            return took

        if live is not None:
            live.start()
        try:
            step("every pod address answers", lambda: picture.matrix.green)
            picture.note("fra-w-2 joins (its Node has no Kilo annotation)")
            joined = mesh.add_node(topology.worker("fra", 2))
            created = time.monotonic() - (time.time() - joined.registered_at)
            step(
                f"{joined.name} answers every node, since its Node was created",
                lambda: picture.matrix.green,
                since=created,
            )
            picture.note("git push: fra's pinned leader fra-gw-1 -> fra-gw-2")
            stream = PingStream(mesh.nodes["ams-w-1"].endpoint, mesh.nodes["fra-w-1"].endpoint)
            pushed = time.time()
            mesh.push(files("fra-gw-2"), "fra: lead from fra-gw-2")
            step(
                "Kilo leads fra from fra-gw-2 and every pod answers",
                lambda: mesh.kilo_leaders()["fra"] == ["fra-gw-2"] and picture.matrix.green,
            )
            stream.stop()
            gap = stream.longest_gap(pushed, time.time())
            picture.note(f"longest silence of a 20 ms ping ams-w-1 -> fra-w-1: {gap * 1000:.0f} ms")
            picture.note("tearing down")
            show()
        finally:
            if live is not None:
                live.stop()
    if live is None:
        console.print(picture.log_text())
    console.print("mesh torn down: every namespace and process is gone")


def main() -> None:
    try:
        console = Console()
        if not console.is_terminal:  # a captured run: wide enough for the ping matrix
            console = Console(width=120)
        run(console)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
