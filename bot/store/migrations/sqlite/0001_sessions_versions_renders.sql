BEGIN;

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    guild_id     INTEGER,
    channel_id   INTEGER NOT NULL,
    thread_id    INTEGER UNIQUE,
    owner_id     INTEGER NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('prompt', 'imagine')),
    idea         TEXT NOT NULL,
    target       TEXT NOT NULL,
    style        TEXT,
    head_version INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX sessions_by_owner ON sessions (owner_id, created_at);

CREATE TABLE versions (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL CHECK (number >= 1),
    parent      INTEGER,
    prompt      TEXT NOT NULL,
    instruction TEXT,
    author_id   INTEGER NOT NULL,
    message_id  INTEGER,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (session_id, number)
);

CREATE TABLE renders (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    requester_id   INTEGER NOT NULL,
    channel_id     INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    model          TEXT NOT NULL,
    size           TEXT NOT NULL,
    quality        TEXT NOT NULL,
    revised_prompt TEXT,
    input_tokens   INTEGER,
    output_tokens  INTEGER,
    cost_usd       REAL,
    message_id     INTEGER,
    error_code     TEXT,
    error          TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at     TEXT,
    finished_at    TEXT
);
CREATE INDEX renders_by_status ON renders (status);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

PRAGMA user_version = 1;
COMMIT;
