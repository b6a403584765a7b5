-- Narrower rollups of usage_records, kept in the same transaction as the
-- records and usage_minutes (store/usage_rollups.go). usage_minutes has a
-- row per minute, model, key, user and token, which with thousands of keys
-- is about a row per request; the reports the dashboard asks for most read
-- these instead:
--   usage_model_minutes: totals and group_by=model, per minute;
--   usage_key_days:      group_by=key over whole UTC days (edges come from
--                        usage_minutes and usage_records);
--   usage_key_minutes:   one key's series, found by key first.
CREATE TABLE usage_model_minutes (
	minute_ms         INTEGER NOT NULL,
	model             TEXT    NOT NULL,
	requests          INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	latency_ms        INTEGER NOT NULL DEFAULT 0,
	cost              REAL NOT NULL DEFAULT 0,
	PRIMARY KEY (minute_ms, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE usage_key_days (
	day_ms            INTEGER NOT NULL,
	key_id            TEXT    NOT NULL,
	model             TEXT    NOT NULL,
	requests          INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	latency_ms        INTEGER NOT NULL DEFAULT 0,
	cost              REAL NOT NULL DEFAULT 0,
	PRIMARY KEY (day_ms, key_id, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE usage_key_minutes (
	key_id            TEXT    NOT NULL,
	minute_ms         INTEGER NOT NULL,
	model             TEXT    NOT NULL,
	requests          INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	latency_ms        INTEGER NOT NULL DEFAULT 0,
	cost              REAL NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, minute_ms, model)
) STRICT, WITHOUT ROWID;

INSERT INTO usage_model_minutes (minute_ms, model,
	requests, errors, prompt_tokens, completion_tokens, latency_ms, cost)
SELECT (time_ms / 60000) * 60000, model,
	COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
	SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms), SUM(cost)
FROM usage_records
GROUP BY 1, 2;

INSERT INTO usage_key_days (day_ms, key_id, model,
	requests, errors, prompt_tokens, completion_tokens, latency_ms, cost)
SELECT (time_ms / 86400000) * 86400000, key_id, model,
	COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
	SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms), SUM(cost)
FROM usage_records
GROUP BY 1, 2, 3;

INSERT INTO usage_key_minutes (key_id, minute_ms, model,
	requests, errors, prompt_tokens, completion_tokens, latency_ms, cost)
SELECT key_id, (time_ms / 60000) * 60000, model,
	COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
	SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms), SUM(cost)
FROM usage_records
GROUP BY 1, 2, 3;
