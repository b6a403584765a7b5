-- Per-minute rollups of usage_records, kept in the same transaction as the
-- records they sum (store/usage.go), so reports read a few rows per minute
-- instead of every request. minute_ms is the UTC unix millisecond at which
-- the minute starts. A report over [from, to) sums the whole minutes here
-- and the partial minutes at its edges from usage_records.
CREATE TABLE usage_minutes (
	minute_ms         BIGINT  NOT NULL,
	model             TEXT    NOT NULL,
	key_id            TEXT    NOT NULL,
	user_name         TEXT    NOT NULL,
	token_name        TEXT    NOT NULL,
	requests          BIGINT NOT NULL DEFAULT 0,
	errors            BIGINT NOT NULL DEFAULT 0,
	prompt_tokens     BIGINT NOT NULL DEFAULT 0,
	completion_tokens BIGINT NOT NULL DEFAULT 0,
	latency_ms        BIGINT NOT NULL DEFAULT 0,
	cost              DOUBLE PRECISION NOT NULL DEFAULT 0,
	PRIMARY KEY (minute_ms, model, key_id, user_name, token_name)
);

INSERT INTO usage_minutes (minute_ms, model, key_id, user_name, token_name,
	requests, errors, prompt_tokens, completion_tokens, latency_ms, cost)
SELECT (time_ms / 60000) * 60000, model, key_id, user_name, token_name,
	COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
	SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_ms), SUM(cost)
FROM usage_records
GROUP BY 1, 2, 3, 4, 5;

-- The raw records keep only the index that listing and retention by time
-- need: each of these cost a B-tree update per request.
DROP INDEX IF EXISTS usage_records_model_time_idx;
DROP INDEX IF EXISTS usage_records_key_time_idx;
DROP INDEX IF EXISTS usage_records_token_time_idx;
DROP INDEX IF EXISTS usage_records_user_time_idx;
