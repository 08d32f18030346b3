"""Planning: a topology and the live nodes in, a :class:`~.plan.Plan` out. Which site
claims which node, what each member should carry, the diff against what it carries, what
an apply leaves (``project``, stated once), the leader Kilo will elect, and the one
:class:`~.planner.Planner` that answers for the cluster, a site or a node. Pure."""
