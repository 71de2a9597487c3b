"""The aiohttp application: routes, request parsing, error mapping, health and metrics."""
