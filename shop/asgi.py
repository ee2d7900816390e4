"""The ASGI entry point for uvicorn workers: `shop.asgi:app`."""

from shop.app import create_app

app = create_app()
