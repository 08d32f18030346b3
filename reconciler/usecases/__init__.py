"""The use cases: what the command line, the controller and the agent call. Each states
one thing topoctl does (plan, apply, snapshot ...) once, over the ports, with typed
results; the callers parse flags or run loops, wire adapters and report."""
