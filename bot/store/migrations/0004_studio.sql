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

-- Renders are jobs of two kinds: drawing a version, or editing an earlier picture by an instruction.
ALTER TABLE renders ADD COLUMN kind TEXT NOT NULL DEFAULT 'generate' CHECK (kind IN ('generate', 'edit'));
ALTER TABLE renders ADD COLUMN source_render_id INTEGER REFERENCES renders (id) ON DELETE SET NULL;
-- Which picture of the source render (1 for the first), since one render can hold several.
ALTER TABLE renders ADD COLUMN source_index INTEGER;
ALTER TABLE renders ADD COLUMN instruction TEXT;
-- The prompt as sent to the image model (for an edit, the edit prompt written from the instruction).
ALTER TABLE renders ADD COLUMN prompt TEXT;
ALTER TABLE renders ADD COLUMN n INTEGER NOT NULL DEFAULT 1 CHECK (n BETWEEN 1 AND 10);
ALTER TABLE renders ADD COLUMN with_reference INTEGER NOT NULL DEFAULT 0 CHECK (with_reference IN (0, 1));
ALTER TABLE renders ADD COLUMN message_channel_id INTEGER;
-- 1 when the server reported no usage and the cost is an estimate from the price table.
ALTER TABLE renders ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0 CHECK (cost_estimated IN (0, 1));
CREATE INDEX renders_by_message ON renders (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX renders_by_session ON renders (session_id);

PRAGMA user_version = 4;
COMMIT;
