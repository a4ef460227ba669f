BEGIN;

CREATE TABLE refinements (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    author_id   INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    instruction TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'failed', 'interrupted')),
    version     INTEGER,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX refinements_by_status ON refinements (status);

PRAGMA user_version = 2;
COMMIT;
