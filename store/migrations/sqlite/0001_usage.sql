-- One row per relayed request (SPEC section 6). time_ms is UTC unix
-- milliseconds in both dialects, so range filters and ordering are the same
-- SQL everywhere. STRICT makes SQLite reject a value of the wrong type instead
-- of storing it silently.
CREATE TABLE usage_records (
	id                INTEGER PRIMARY KEY,
	time_ms           INTEGER NOT NULL,
	request_id        TEXT    NOT NULL DEFAULT '',
	user_name         TEXT    NOT NULL DEFAULT '',
	token_name        TEXT    NOT NULL DEFAULT '',
	model             TEXT    NOT NULL DEFAULT '',
	upstream_model    TEXT    NOT NULL DEFAULT '',
	key_id            TEXT    NOT NULL DEFAULT '',
	status            INTEGER NOT NULL DEFAULT 0,
	attempts          INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	latency_ms        INTEGER NOT NULL DEFAULT 0,
	ttft_ms           INTEGER NOT NULL DEFAULT 0,
	cost              REAL    NOT NULL DEFAULT 0,
	stream            INTEGER NOT NULL DEFAULT 0 CHECK (stream IN (0, 1))
) STRICT;

-- Reports filter by a time range and group by key, model, user or token.
CREATE INDEX usage_records_time_idx       ON usage_records (time_ms);
CREATE INDEX usage_records_model_time_idx ON usage_records (model, time_ms);
CREATE INDEX usage_records_key_time_idx   ON usage_records (key_id, time_ms);
CREATE INDEX usage_records_token_time_idx ON usage_records (token_name, time_ms);
CREATE INDEX usage_records_user_time_idx  ON usage_records (user_name, time_ms);
