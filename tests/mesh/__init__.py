"""A real Kilo mesh in network namespaces, driven by topoctl: tests, benchmarks, demos.

`Mesh` (harness.py) is a context manager that builds it and tears it down; pytest
modules share one per module (conftest.py `build`), and a script uses it as is:

    from tests.mesh import topology
    from tests.mesh.harness import Mesh

    locations = topology.layout(("fra", 1, 2), ("ams", 1, 1))
    with Mesh(locations, topology=topology.files(locations)) as mesh:
        mesh.wait_green(60)
        print(mesh.ping_matrix(), mesh.kilo_leaders())

The parts:
- spec.py: locations, nodes and the address plan;
- netns.py: namespaces, a node's private mount namespace, clean-up of killed runs;
- fabric.py: the underlay (WAN, a LAN per location, on-prem networks, the API link);
- kubelet.py: Node registration, Ready condition, node Lease renewals;
- procs.py: the supervised processes (wireguard-go, kg, topoctl run and agent);
- probe.py: ping matrices, `wg show` dumps, waiting on conditions with deadlines;
- topology.py: test layouts and the sites/*.yaml that describe them.

Root only, and Kilo's agent through KILO_KG: `requirements()` says what is missing and
the tests skip with that reason. The one deviation from Cozystack's Kilo flags,
`--encapsulate=never` (this kernel has no `ipip`), is explained in harness.py.
"""
