"""HTTP API and web player (FastAPI), a thin adapter over the services."""
