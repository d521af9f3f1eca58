"""HTTP routes, split by area: ``api/`` (JSON, API.md) and ``pages/`` (server-rendered HTML)."""
