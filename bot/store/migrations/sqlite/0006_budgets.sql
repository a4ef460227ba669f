BEGIN;

-- Budgets count a server's pictures and spend without a join, and a job reserves its estimated
-- cost when it is queued, so that two requests at once cannot both squeeze under a limit.
ALTER TABLE renders ADD COLUMN guild_id INTEGER;
ALTER TABLE renders ADD COLUMN cost_reserved REAL;
UPDATE renders SET guild_id = (SELECT guild_id FROM sessions WHERE sessions.id = renders.session_id);
CREATE INDEX renders_by_guild ON renders (guild_id, created_at);

-- A server's own limits; NULL means the operator's default, 0 means no limit.
ALTER TABLE guild_settings ADD COLUMN daily_pictures INTEGER CHECK (daily_pictures >= 0);
ALTER TABLE guild_settings ADD COLUMN daily_spend REAL CHECK (daily_spend >= 0);
ALTER TABLE guild_settings ADD COLUMN server_daily_spend REAL CHECK (server_daily_spend >= 0);
ALTER TABLE guild_settings ADD COLUMN server_monthly_spend REAL CHECK (server_monthly_spend >= 0);

-- A role's own daily picture limit on a server (higher or lower than the server's; 0: no limit).
CREATE TABLE role_limits (
    guild_id       INTEGER NOT NULL,
    role_id        INTEGER NOT NULL,
    daily_pictures INTEGER NOT NULL CHECK (daily_pictures >= 0),
    PRIMARY KEY (guild_id, role_id)
);

PRAGMA user_version = 6;
COMMIT;
