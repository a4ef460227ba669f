BEGIN;

-- The shape a session's pictures take (square, landscape, portrait); NULL means the server's default size.
ALTER TABLE sessions ADD COLUMN aspect TEXT CHECK (aspect IN ('square', 'landscape', 'portrait'));

-- A member's own picture that every render of the session starts from (kept whole: Discord's links expire).
CREATE TABLE reference_images (
    session_id INTEGER PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    filename   TEXT NOT NULL,
    mime       TEXT NOT NULL CHECK (mime IN ('image/png', 'image/jpeg', 'image/webp')),
    data       BLOB NOT NULL
);

-- Renders are rebuilt (SQLite cannot change a CHECK in place): a queued job can now be `cancelled`,
-- and renders are jobs of two kinds, drawing a version or editing an earlier picture by an
-- instruction. The migration runner turns foreign keys off around this script and checks them after.
CREATE TABLE renders_rebuilt (
    id                 INTEGER PRIMARY KEY,
    session_id         INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version            INTEGER NOT NULL,
    requester_id       INTEGER NOT NULL,
    channel_id         INTEGER NOT NULL,
    status             TEXT NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted', 'cancelled')),
    model              TEXT NOT NULL,
    size               TEXT NOT NULL,
    quality            TEXT NOT NULL,
    revised_prompt     TEXT,
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cost_usd           REAL,
    message_id         INTEGER,
    error_code         TEXT,
    error              TEXT,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at         TEXT,
    finished_at        TEXT,
    kind               TEXT NOT NULL DEFAULT 'generate' CHECK (kind IN ('generate', 'edit')),
    source_render_id   INTEGER REFERENCES renders (id) ON DELETE SET NULL,
    -- Which picture of the source render (1 for the first), since one render can hold several.
    source_index       INTEGER,
    instruction        TEXT,
    -- The prompt as sent to the image model (for an edit, the edit prompt written from the instruction).
    prompt             TEXT,
    n                  INTEGER NOT NULL DEFAULT 1 CHECK (n BETWEEN 1 AND 10),
    with_reference     INTEGER NOT NULL DEFAULT 0 CHECK (with_reference IN (0, 1)),
    message_channel_id INTEGER,
    -- 1 when the server reported no usage and the cost is an estimate from the price table.
    cost_estimated     INTEGER NOT NULL DEFAULT 0 CHECK (cost_estimated IN (0, 1))
);
INSERT INTO renders_rebuilt (id, session_id, version, requester_id, channel_id, status, model, size, quality,
    revised_prompt, input_tokens, output_tokens, cost_usd, message_id, error_code, error, created_at,
    started_at, finished_at)
SELECT id, session_id, version, requester_id, channel_id, status, model, size, quality,
    revised_prompt, input_tokens, output_tokens, cost_usd, message_id, error_code, error, created_at,
    started_at, finished_at
FROM renders;
DROP TABLE renders;
ALTER TABLE renders_rebuilt RENAME TO renders;
CREATE INDEX renders_by_status ON renders (status);
CREATE INDEX renders_by_message ON renders (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX renders_by_session ON renders (session_id);
-- The fair queue: a member's latest start, and their queued jobs in order.
CREATE INDEX renders_by_requester ON renders (requester_id, started_at);

PRAGMA user_version = 4;
COMMIT;
