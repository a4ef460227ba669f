BEGIN;

-- What counts against budgets, one row per job or chat call, defined once for every query that counts:
-- a job's pictures while it is queued, running or done; its cost once known and its reserved estimate
-- until then; a job cut off while running keeps its reservation (OpenAI may have billed it); failed and
-- cancelled jobs count nothing.
CREATE VIEW spending AS
SELECT guild_id, requester_id AS user_id, created_at,
       CASE WHEN status IN ('queued', 'running', 'done') THEN n ELSE 0 END AS pictures,
       CASE
           WHEN status = 'done' THEN COALESCE(cost_usd, cost_reserved, 0)
           WHEN status IN ('queued', 'running') THEN COALESCE(cost_reserved, 0)
           WHEN status = 'interrupted' AND started_at IS NOT NULL THEN COALESCE(cost_reserved, 0)
           ELSE 0
       END AS spend
FROM renders
UNION ALL
SELECT guild_id, user_id, created_at, 0, COALESCE(cost_usd, 0)
FROM chat_usage;

PRAGMA user_version = 7;
COMMIT;
