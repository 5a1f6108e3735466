"""ASGI entry point for `crm api` and `crm run` (uvicorn imports this in every worker process)."""

from crm import logredact
from crm.app import create_app

# After uvicorn has configured its loggers and before the first request: no link token is logged.
logredact.install()
app = create_app()
