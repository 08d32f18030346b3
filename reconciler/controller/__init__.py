"""``topoctl run``: the controller's loops (leader election so far)."""
