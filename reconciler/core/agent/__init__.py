"""The node agent's decisions: kernel routes and their diff, the published settings, the
node's addresses and taint, and its condition. Pure: the agent's use case does the I/O
through the ports."""
