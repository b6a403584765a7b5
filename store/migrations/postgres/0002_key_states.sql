-- Key health and totals, written behind the request path so they survive a
-- restart (SPEC section 4). model is '' for the key-wide row; a row per
-- model holds the key-and-model cooldown (rate limits, server errors).
-- Times are UTC unix milliseconds, 0 for "never".
CREATE TABLE key_states (
	key_id            TEXT             NOT NULL,
	model             TEXT             NOT NULL DEFAULT '',
	class             TEXT             NOT NULL DEFAULT '',
	streak            INTEGER          NOT NULL DEFAULT 0,
	retries           INTEGER          NOT NULL DEFAULT 0,
	disabled          BOOLEAN          NOT NULL DEFAULT FALSE,
	cooling           BOOLEAN          NOT NULL DEFAULT FALSE,
	blocked_until_ms  BIGINT           NOT NULL DEFAULT 0,
	first_error_ms    BIGINT           NOT NULL DEFAULT 0,
	last_error_ms     BIGINT           NOT NULL DEFAULT 0,
	last_error        TEXT             NOT NULL DEFAULT '',
	operator_disabled BOOLEAN          NOT NULL DEFAULT FALSE,
	requests          BIGINT           NOT NULL DEFAULT 0,
	successes         BIGINT           NOT NULL DEFAULT 0,
	failures          BIGINT           NOT NULL DEFAULT 0,
	latency_ms        BIGINT           NOT NULL DEFAULT 0,
	last_used_ms      BIGINT           NOT NULL DEFAULT 0,
	prompt_tokens     BIGINT           NOT NULL DEFAULT 0,
	completion_tokens BIGINT           NOT NULL DEFAULT 0,
	cost              DOUBLE PRECISION NOT NULL DEFAULT 0,
	updated_ms        BIGINT           NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, model)
);
