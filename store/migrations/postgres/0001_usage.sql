-- One row per relayed request (SPEC section 6). time_ms is UTC unix
-- milliseconds in both dialects, so range filters and ordering are the same
-- SQL everywhere (to_timestamp(time_ms / 1000.0) for a readable time).
CREATE TABLE usage_records (
	id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time_ms           BIGINT           NOT NULL,
	request_id        TEXT             NOT NULL DEFAULT '',
	user_name         TEXT             NOT NULL DEFAULT '',
	token_name        TEXT             NOT NULL DEFAULT '',
	model             TEXT             NOT NULL DEFAULT '',
	upstream_model    TEXT             NOT NULL DEFAULT '',
	key_id            TEXT             NOT NULL DEFAULT '',
	status            INTEGER          NOT NULL DEFAULT 0,
	attempts          INTEGER          NOT NULL DEFAULT 0,
	prompt_tokens     BIGINT           NOT NULL DEFAULT 0,
	completion_tokens BIGINT           NOT NULL DEFAULT 0,
	latency_ms        BIGINT           NOT NULL DEFAULT 0,
	ttft_ms           BIGINT           NOT NULL DEFAULT 0,
	cost              DOUBLE PRECISION NOT NULL DEFAULT 0,
	stream            BOOLEAN          NOT NULL DEFAULT FALSE
);

-- Reports filter by a time range and group by key, model, user or token.
CREATE INDEX usage_records_time_idx       ON usage_records (time_ms);
CREATE INDEX usage_records_model_time_idx ON usage_records (model, time_ms);
CREATE INDEX usage_records_key_time_idx   ON usage_records (key_id, time_ms);
CREATE INDEX usage_records_token_time_idx ON usage_records (token_name, time_ms);
CREATE INDEX usage_records_user_time_idx  ON usage_records (user_name, time_ms);
