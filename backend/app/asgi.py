"""`uvicorn backend.app.asgi:app` — the app built from environment settings."""
from .main import create_app

app = create_app()
