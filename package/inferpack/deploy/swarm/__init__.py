"""The swarm runtime: a deploy package as replicated Docker Swarm services (``--runtime swarm``)."""
