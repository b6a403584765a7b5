-- The audit log (SPEC section 7): every admin change, login and failed
-- login, with who, what, on what and from where. No secret is ever written.
CREATE TABLE audit_log (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time_ms BIGINT NOT NULL,
	actor   TEXT NOT NULL DEFAULT '',
	action  TEXT NOT NULL DEFAULT '',
	target  TEXT NOT NULL DEFAULT '',
	source  TEXT NOT NULL DEFAULT '',
	status  INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX audit_log_time_idx ON audit_log (time_ms);
