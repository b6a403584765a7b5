-- Key health and totals, written behind the request path so they survive a
-- restart (SPEC section 4). model is '' for the key-wide row; a row per
-- model holds the key-and-model cooldown (rate limits, server errors).
-- Times are UTC unix milliseconds, 0 for "never".
CREATE TABLE key_states (
	key_id            TEXT    NOT NULL,
	model             TEXT    NOT NULL DEFAULT '',
	class             TEXT    NOT NULL DEFAULT '',
	streak            INTEGER NOT NULL DEFAULT 0,
	retries           INTEGER NOT NULL DEFAULT 0,
	disabled          INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	cooling           INTEGER NOT NULL DEFAULT 0 CHECK (cooling IN (0, 1)),
	blocked_until_ms  INTEGER NOT NULL DEFAULT 0,
	first_error_ms    INTEGER NOT NULL DEFAULT 0,
	last_error_ms     INTEGER NOT NULL DEFAULT 0,
	last_error        TEXT    NOT NULL DEFAULT '',
	operator_disabled INTEGER NOT NULL DEFAULT 0 CHECK (operator_disabled IN (0, 1)),
	requests          INTEGER NOT NULL DEFAULT 0,
	successes         INTEGER NOT NULL DEFAULT 0,
	failures          INTEGER NOT NULL DEFAULT 0,
	latency_ms        INTEGER NOT NULL DEFAULT 0,
	last_used_ms      INTEGER NOT NULL DEFAULT 0,
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	cost              REAL    NOT NULL DEFAULT 0,
	updated_ms        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, model)
) STRICT;
