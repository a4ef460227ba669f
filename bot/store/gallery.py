"""Queries of the web gallery: pictures kept, listed within what one link may show, and forgotten; links'
scopes; the secret links are signed with; whether a server's gallery is on.

What a scope may show is decided here, in SQL, on every read, so nothing else has to repeat it:

* a server's link: that server's pictures (posted while Mural is in it), only while its gallery is on,
  in the channels and threads the scope lists, and in public threads of the channels it lists (a public
  thread is visible to whoever may view its channel); a private thread only when listed;
* a link made in a DM: the member's own pictures from DMs, group DMs and user installs, and from every
  server whose gallery is on.

A server's gallery turned off hides its pictures from the next read on, whichever process serves it.
Searches match every word given anywhere in the prompt, ignoring case (the prompt is kept case-folded
beside itself, so both backends fold alike, beyond ASCII too).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from bot.core.gallery import MIN_SECRET_LENGTH, PAGE_SIZE, GalleryItem, GalleryScope, KeptPicture
from bot.store.base import Database, parse_time, records

# A search uses at most this many words, each at most this long; more is ignored.
MAX_SEARCH_WORDS = 8
MAX_WORD_LENGTH = 100
# Message ids per statement when forgetting many at once.
_FORGET_BATCH = 500
_SECRET_KEY = "gallery-secret"

_ITEM_COLUMNS = (
    "p.id, p.guild_id, p.channel_id, p.message_id, p.owner_id, p.owner_name, p.prompt, p.model, p.size,"
    " p.created_at, p.width, p.height"
)
_GALLERY_ON = "EXISTS (SELECT 1 FROM guild_settings g WHERE g.guild_id = p.guild_id AND g.gallery)"
_IN_SCOPE_CHANNELS = "SELECT c.channel_id FROM gallery_scope_channels c WHERE c.scope_id = ?"
_KEEP_COLUMNS = (
    "render_id",
    "picture_index",
    "guild_id",
    "in_server",
    "channel_id",
    "parent_id",
    "private_thread",
    "message_id",
    "owner_id",
    "owner_name",
    "prompt",
    "search_text",
    "model",
    "size",
    "width",
    "height",
)


_MOVED_ON_KEEPING_AGAIN = ("guild_id", "in_server", "channel_id", "parent_id", "private_thread", "message_id")
_KEEP = (
    f"INSERT INTO gallery_pictures ({', '.join(_KEEP_COLUMNS)}) VALUES ({', '.join('?' for _ in _KEEP_COLUMNS)})"
    " ON CONFLICT (render_id, picture_index) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _MOVED_ON_KEEPING_AGAIN)
    + " RETURNING id"
)


def _placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def search_words(search: str) -> list[str]:
    """The words of a search, case-folded, as LIKE patterns that match them anywhere (`%`, `_` and `\\`
    in them taken literally)."""
    words = [word[:MAX_WORD_LENGTH] for word in search.casefold().split()][:MAX_SEARCH_WORDS]
    escaped = (word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for word in words)
    return [f"%{word}%" for word in escaped]


def _visible(scope: GalleryScope) -> tuple[str, list[Any]]:
    """The condition on `p` (gallery_pictures) for what `scope` may show, and its parameters."""
    if scope.guild_id is None:
        return f"p.owner_id = ? AND (NOT p.in_server OR {_GALLERY_ON})", [scope.user_id]
    return (
        f"p.guild_id = ? AND p.in_server AND {_GALLERY_ON}"
        f" AND (p.channel_id IN ({_IN_SCOPE_CHANNELS})"
        f" OR (NOT p.private_thread AND p.parent_id IN ({_IN_SCOPE_CHANNELS})))",
        [scope.guild_id, scope.scope_id, scope.scope_id],
    )


class GalleryQueries(Database):
    # -- keeping and forgetting -----------------------------------------------------------------------

    async def keep_gallery_picture(self, picture: KeptPicture) -> int:
        """Keep one posted picture and its WebP bytes; its gallery id. The same picture of the same render
        kept again (posted anew) is moved to its new message, not kept twice."""
        values = {column: getattr(picture, column) for column in _KEEP_COLUMNS if column != "search_text"}
        values["search_text"] = picture.prompt.casefold()
        async with self._transaction() as tx:
            row = await tx.one(_KEEP, *(values[column] for column in _KEEP_COLUMNS))
            assert row is not None
            picture_id = int(row["id"])
            await tx.run(
                "INSERT INTO gallery_images (picture_id, webp) VALUES (?, ?) ON CONFLICT (picture_id) DO NOTHING",
                picture_id,
                picture.webp,
            )
        return picture_id

    async def forget_gallery_messages(self, message_ids: Collection[int]) -> int:
        """Forget every picture kept from these messages (deleted in Discord); how many were forgotten."""
        ids = sorted(set(message_ids))
        forgotten = 0
        for start in range(0, len(ids), _FORGET_BATCH):
            batch = ids[start : start + _FORGET_BATCH]
            sql = f"DELETE FROM gallery_pictures WHERE message_id IN ({_placeholders(len(batch))})"
            forgotten += await self._run(sql, *batch)
        return forgotten

    async def forget_gallery_channel(self, channel_id: int) -> int:
        """Forget every picture kept in a deleted channel or thread (and in the threads of a deleted channel)."""
        return await self._run(
            "DELETE FROM gallery_pictures WHERE channel_id = ? OR parent_id = ?", channel_id, channel_id
        )

    async def private_gallery_threads(self, guild_id: int) -> list[tuple[int, int]]:
        """The private threads of a server that hold kept pictures: (thread id, its channel's id)."""
        rows = await self._all(
            "SELECT DISTINCT channel_id, parent_id FROM gallery_pictures"
            " WHERE guild_id = ? AND parent_id IS NOT NULL AND private_thread AND in_server",
            guild_id,
        )
        return [(int(row["channel_id"]), int(row["parent_id"])) for row in rows]

    # -- reading within a scope -------------------------------------------------------------------------

    async def gallery_page(
        self,
        scope: GalleryScope,
        *,
        before: int | None = None,
        search: str = "",
        only_user: bool = False,
        limit: int = PAGE_SIZE,
    ) -> list[GalleryItem]:
        """Up to `limit` pictures `scope` may show, newest first: older than the picture id `before` (the
        last one of the previous page), with every word of `search` in the prompt (any case), only the
        scope's member's own with `only_user`. Ask for PAGE_SIZE + 1 to learn whether there is more."""
        condition, params = _visible(scope)
        if before is not None:
            condition += " AND p.id < ?"
            params.append(before)
        if only_user:
            condition += " AND p.owner_id = ?"
            params.append(scope.user_id)
        for pattern in search_words(search):
            condition += " AND p.search_text LIKE ? ESCAPE '\\'"
            params.append(pattern)
        sql = f"SELECT {_ITEM_COLUMNS} FROM gallery_pictures p WHERE {condition} ORDER BY p.id DESC LIMIT ?"
        return records(GalleryItem, await self._all(sql, *params, max(0, limit)))

    async def gallery_item(self, scope: GalleryScope, picture_id: int) -> GalleryItem | None:
        """One picture, if `scope` may show it."""
        condition, params = _visible(scope)
        sql = f"SELECT {_ITEM_COLUMNS} FROM gallery_pictures p WHERE p.id = ? AND {condition}"
        found = records(GalleryItem, await self._all(sql, picture_id, *params))
        return found[0] if found else None

    async def gallery_image(self, scope: GalleryScope, picture_id: int) -> bytes | None:
        """One picture's WebP bytes, if `scope` may show it."""
        condition, params = _visible(scope)
        sql = (
            "SELECT i.webp FROM gallery_images i JOIN gallery_pictures p ON p.id = i.picture_id"
            f" WHERE p.id = ? AND {condition}"
        )
        row = await self._one(sql, picture_id, *params)
        return None if row is None else bytes(row["webp"])

    # -- scopes, the secret, servers ----------------------------------------------------------------------

    async def save_gallery_scope(self, scope: GalleryScope) -> None:
        """Keep what a new link may show (until it expires); scopes that expired go at the same time."""
        async with self._transaction() as tx:
            await tx.run("DELETE FROM gallery_scopes WHERE expires_at < NOW()")
            await tx.run(
                "INSERT INTO gallery_scopes (scope_id, user_id, guild_id, expires_at) VALUES (?, ?, ?, ?)",
                scope.scope_id,
                scope.user_id,
                scope.guild_id,
                datetime.fromtimestamp(scope.expires, UTC),
            )
            for channel_id in sorted(scope.channel_ids):
                await tx.run(
                    "INSERT INTO gallery_scope_channels (scope_id, channel_id) VALUES (?, ?)",
                    scope.scope_id,
                    channel_id,
                )

    async def gallery_scope(self, scope_id: bytes, *, now: datetime | None = None) -> GalleryScope | None:
        """The scope a link names, unless it is unknown or expired (at `now`, default the present)."""
        row = await self._one(
            "SELECT user_id, guild_id, expires_at FROM gallery_scopes WHERE scope_id = ?", bytes(scope_id)
        )
        if row is None:
            return None
        expires = _as_datetime(row["expires_at"])
        if expires <= (now or datetime.now(UTC)):
            return None
        channels = await self._all(
            "SELECT channel_id FROM gallery_scope_channels WHERE scope_id = ?", bytes(scope_id)
        )
        return GalleryScope(
            scope_id=bytes(scope_id),
            user_id=int(row["user_id"]),
            guild_id=None if row["guild_id"] is None else int(row["guild_id"]),
            channel_ids=frozenset(int(channel["channel_id"]) for channel in channels),
            expires=int(expires.timestamp()),
        )

    async def gallery_secret(self) -> str:
        """The secret links are signed with when GALLERY_SECRET is unset: made once, then the same for every
        process sharing the database and across restarts."""
        await self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            _SECRET_KEY,
            secrets.token_urlsafe(48),
        )
        secret = await self.get_meta(_SECRET_KEY)
        assert secret is not None and len(secret) >= MIN_SECRET_LENGTH
        return secret

    async def gallery_on(self, guild_id: int) -> bool:
        """Whether a server's admins have turned its gallery on (read from the database, not a cache)."""
        row = await self._one("SELECT gallery FROM guild_settings WHERE guild_id = ?", guild_id)
        return row is not None and bool(row["gallery"])


def _as_datetime(value: Any) -> datetime:
    moment = parse_time(value)
    assert moment is not None
    return moment
