BEGIN;

-- The web gallery (issue 16). Nothing of a server is shown unless its admins turn its gallery on.
ALTER TABLE guild_settings ADD COLUMN gallery INTEGER NOT NULL DEFAULT 0 CHECK (gallery IN (0, 1));

-- Mural's own copy of each picture it posted where a gallery can show it, one row per picture of a render
-- (`picture_index` from 0). `in_server`: posted in a server Mural is in, whose gallery may show it; else a
-- DM, a group DM or a user install elsewhere, shown to its owner only (`guild_id` still names the server of
-- a user install, for the jump link). In a thread, `parent_id` is its channel and `private_thread` says
-- whether only its members see it. `search_text` is the prompt case-folded, for searches. Ids are never
-- reused (AUTOINCREMENT), so a link to a forgotten picture never shows another.
CREATE TABLE gallery_pictures (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    render_id      INTEGER NOT NULL,
    picture_index  INTEGER NOT NULL CHECK (picture_index >= 0),
    guild_id       INTEGER,
    in_server      INTEGER NOT NULL CHECK (in_server IN (0, 1)),
    channel_id     INTEGER NOT NULL,
    parent_id      INTEGER,
    private_thread INTEGER NOT NULL DEFAULT 0 CHECK (private_thread IN (0, 1)),
    message_id     INTEGER NOT NULL,
    owner_id       INTEGER NOT NULL,
    owner_name     TEXT NOT NULL,
    prompt         TEXT NOT NULL,
    search_text    TEXT NOT NULL,
    model          TEXT NOT NULL,
    size           TEXT NOT NULL,
    width          INTEGER NOT NULL CHECK (width > 0),
    height         INTEGER NOT NULL CHECK (height > 0),
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (render_id, picture_index)
);
-- Newest first in a server, and a member's own newest first; forgetting a deleted message; a server's
-- threads with pictures. Searching scans one server's (or member's) rows in id order: SQLite has no index
-- for words inside a text short of a full-text table.
CREATE INDEX gallery_pictures_by_guild ON gallery_pictures (guild_id, id);
CREATE INDEX gallery_pictures_by_owner ON gallery_pictures (owner_id, id);
CREATE INDEX gallery_pictures_by_message ON gallery_pictures (message_id);
CREATE INDEX gallery_pictures_by_thread ON gallery_pictures (guild_id, parent_id) WHERE parent_id IS NOT NULL;

-- The WebP bytes (at most 1024 px on the long side), apart so that listing and searching never read them.
CREATE TABLE gallery_images (
    picture_id INTEGER PRIMARY KEY REFERENCES gallery_pictures (id) ON DELETE CASCADE,
    webp       BLOB NOT NULL
);

-- What one personal link may show: made by /gallery, for a member, in a server (NULL: their own pictures,
-- from a DM), until it expires; with the channels and threads they could view then.
CREATE TABLE gallery_scopes (
    scope_id   BLOB PRIMARY KEY CHECK (length(scope_id) = 16),
    user_id    INTEGER NOT NULL,
    guild_id   INTEGER,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX gallery_scopes_by_expiry ON gallery_scopes (expires_at);

CREATE TABLE gallery_scope_channels (
    scope_id   BLOB NOT NULL REFERENCES gallery_scopes (scope_id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (scope_id, channel_id)
) WITHOUT ROWID;

PRAGMA user_version = 9;
COMMIT;
