"""``topoctl run``: the controller's loops.

leader.py (the Lease), loop.py (the reconcile loop over informer.py, cache.py, queue.py
and guard.py), status.py and events.py (the status ConfigMap, Node Events). Each takes
ports; cli.py wires the adapters.
"""
