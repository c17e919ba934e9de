"""ASGI entry point for uvicorn workers: builds settings from the environment, then the app."""

from __future__ import annotations

from fastapi import FastAPI

from kirana.api import logging as kirana_logging
from kirana.api.app import create_app
from kirana.api.settings import load_settings


def factory() -> FastAPI:
    settings = load_settings()
    kirana_logging.configure(settings.log_level, json=settings.log_json)
    return create_app(settings)
