BEGIN;

-- The same queue and the same version numbering on SQLite as on PostgreSQL, where several processes share
-- one database.

-- Version numbers come from the session row (UPDATE … RETURNING), never from MAX(number) + 1, so two
-- writers cannot both take the same number; numbers only grow, even after an undo.
ALTER TABLE sessions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 1;
UPDATE sessions SET last_version = (SELECT COALESCE(MAX(number), 1) FROM versions WHERE versions.session_id = sessions.id);

-- Which process holds a job or an instruction, until when (renewed while it lives), and how many times a
-- job was sent to the image service: a lapsed lease on a queued job means "run it again" (never sent),
-- on a running one "interrupted, Retry" (maybe sent).
ALTER TABLE renders ADD COLUMN held_by TEXT;
ALTER TABLE renders ADD COLUMN lease_until TEXT;
ALTER TABLE renders ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refinements ADD COLUMN held_by TEXT;
ALTER TABLE refinements ADD COLUMN lease_until TEXT;
CREATE INDEX renders_by_holder ON renders (held_by) WHERE held_by IS NOT NULL;

PRAGMA user_version = 8;
COMMIT;
