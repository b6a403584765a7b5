-- Dashboard sessions (SPEC 10), shared by every replica of the database so
-- that a session made on one works on all and a sign-out on one ends it on
-- all. id is the SHA-256 (hex) of the cookie, never the cookie; credential
-- is what the browser signed in with, sealed with the master key.
CREATE TABLE dashboard_sessions (
	id         TEXT    PRIMARY KEY,
	credential BLOB    NOT NULL,
	who        TEXT    NOT NULL,
	expires_ms INTEGER NOT NULL,
	created_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
