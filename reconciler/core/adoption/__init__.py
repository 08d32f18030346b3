"""Adopting a running cluster (``topoctl import``): the topology that declares what Kilo
reads on the live nodes today, and everything that could not be carried over. Pure: live
nodes in, values out (rendered by :mod:`reconciler.core.rendering.imported`)."""
