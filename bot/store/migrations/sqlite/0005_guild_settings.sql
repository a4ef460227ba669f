BEGIN;

-- What a server's admins chose with /settings; NULL means "the operator's default" (the environment).
CREATE TABLE guild_settings (
    guild_id         INTEGER PRIMARY KEY,
    image_model      TEXT,
    image_size       TEXT,
    image_quality    TEXT,
    session_access   TEXT CHECK (session_access IN ('owner', 'thread')),
    required_role_id INTEGER,
    moderation       TEXT CHECK (moderation IN ('off', 'standard', 'strict')),
    audit_channel_id INTEGER,
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

PRAGMA user_version = 5;
COMMIT;
