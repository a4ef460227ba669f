BEGIN;

-- Every chat call's tokens and cost, so spend can be counted per member, server and day.
CREATE TABLE chat_usage (
    id            INTEGER PRIMARY KEY,
    session_id    INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
    guild_id      INTEGER,
    user_id       INTEGER NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('expand', 'refine', 'edit', 'describe', 'rephrase')),
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    estimated     INTEGER NOT NULL DEFAULT 0 CHECK (estimated IN (0, 1)),
    cost_usd      REAL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX chat_usage_by_user ON chat_usage (user_id, created_at);
CREATE INDEX chat_usage_by_guild ON chat_usage (guild_id, created_at);

-- Replies to a version message are found by the message's id (sessions without a thread).
CREATE INDEX versions_by_message ON versions (message_id) WHERE message_id IS NOT NULL;

PRAGMA user_version = 3;
COMMIT;
