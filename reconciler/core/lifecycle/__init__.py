"""Node lifecycle: which dead members to delete, and why the rest stay. Probe rounds to a
verdict per node, the rules and guard rails that decide, the hourly deletion record, and
the decisions as plan values. Pure: ``now`` and every observation are passed in."""
