"""The web gallery (issue 16): pages a signed personal link opens, served on the bot's loop when
GALLERY_PORT is set. The rules (scopes, links) live in `bot.core.gallery`; the pictures in the store."""

from __future__ import annotations

from bot.web.gallery_app import GalleryServer, GallerySource, build_app, serve_gallery

__all__ = ["GalleryServer", "GallerySource", "build_app", "serve_gallery"]
