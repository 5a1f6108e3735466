"""ASGI entry point for `crm api` (uvicorn imports this in every worker process)."""

from crm.app import create_app

app = create_app()
