"""The pure core: no I/O, no clock (``now`` is passed in). One subpackage per concern,
in the order data flows (an import-linter contract keeps the lower ones from reaching up):

- ``loading``: topology files to a validated Topology, every error with file:line:col;
- ``kilo``, ``agent``, ``election``: Kilo's own rules; the node agent's decisions; the
  Lease election's state machine;
- ``planning``: the topology against the live nodes, to a Plan (the one Planner);
- ``lifecycle``: which dead nodes to delete, and why the rest stay;
- ``rendering``: values to text for people and other tools.
"""
