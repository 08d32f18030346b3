"""``topoctl run``: the controller, shaped as controller-runtime's. wiring.py connects the
adapters and starts the parts; each other module takes ports: informer.py and cache.py
(the nodes, listed and watched), plans.py (the planner kept in step with them, and each
site's latest plan), queue.py (sites to reconcile), reconciler.py (one stateless
reconcile of a site), loop.py (the worker between them, writing through guard.py),
lifecycle.py (dead nodes), source.py (git, the last good revision), leader.py (the
Lease), status.py, events.py and observers.py (the status ConfigMap, Events, metrics),
http.py (metrics, health, the webhook).
"""
