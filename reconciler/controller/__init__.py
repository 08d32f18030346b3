"""``topoctl run``: the controller. wiring.py connects the adapters and starts the parts;
each other module takes ports: leader.py (the Lease), source.py (git, the last good
revision), informer.py and cache.py (the nodes), queue.py (sites to reconcile), loop.py
(the reconcile loop, writing through guard.py), lifecycle.py (dead nodes), status.py and
events.py (the status ConfigMap, Events), http.py (metrics, health, the webhook).
"""
