"""The web UI for staff and auditors (中文 first, English by a switch): server-rendered pages served
by the same FastAPI application under ``/web``, with the API's keys, roles, schemas, routes and
read models underneath. ``install(app)`` adds it to an app built by ``api.app.create_app``."""

from __future__ import annotations

from api.web.routes import install

__all__ = ["install"]
