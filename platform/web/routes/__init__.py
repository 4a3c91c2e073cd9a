"""Routers of the web app: login, lab, registry, research, admin pages and the JSON API."""

from sabrkit.web.routes import admin, api, auth, lab, registry, research, shipments

__all__ = ["admin", "api", "auth", "lab", "registry", "research", "shipments"]
