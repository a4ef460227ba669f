"""What `/gallery` says: the personal link, or why there is none here."""

from __future__ import annotations

from bot.core.gallery_service import GalleryLink

NOT_SET_UP = (
    "This Mural has no web gallery: its operator has not set one up (`GALLERY_PORT`). "
    "Your pictures are still in your channels and DMs."
)
SERVER_OFF = (
    "This server's gallery is off. Members with **Manage Server** can turn it on with `/settings gallery:on`."
)
NO_SERVER_HERE = (
    "Mural is not a member of this server, so it has no gallery here. "
    "`/gallery` in a DM with Mural links to your own pictures."
)


def link_text(link: GalleryLink, *, server: bool) -> str:
    """The link, for this member alone. In angle brackets: Discord must not fetch it for a preview."""
    what = (
        "this server's pictures from the channels and threads you can see now"
        if server
        else "your own pictures from DMs, your user installs and servers whose gallery is on"
    )
    return (
        f"🖼️ **Your gallery** — {what}, newest first.\n<{link.url}>\n"
        f"The link is yours alone and works until <t:{link.expires}:f> (<t:{link.expires}:R>); "
        "anyone who has it sees what you see, so keep it to yourself."
    )


def setting_line(on: bool, *, served: bool) -> str:
    """The gallery's line in /settings."""
    line = f"Gallery: `{'on' if on else 'off'}`" + ("" if on else " *(default)*")
    if on and not served:
        line += " (no web gallery is served: the operator has not set `GALLERY_PORT`)"
    return line
