"""Kilo's own rules, reproduced exactly: how it reads a Node, when a check-in is fresh, and
which node leads a location. Pure; the facts and their sources are in docs/domain.md."""
