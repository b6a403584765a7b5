-- Gateway tokens (SPEC section 6). Only the SHA-256 of a token is kept.
CREATE TABLE tokens (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	hash          TEXT    NOT NULL UNIQUE,
	user_name     TEXT    NOT NULL DEFAULT '',
	models        TEXT    NOT NULL DEFAULT '[]',
	rpm           INTEGER NOT NULL DEFAULT 0,
	tpm           INTEGER NOT NULL DEFAULT 0,
	budget_amount REAL    NOT NULL DEFAULT 0,
	budget_period TEXT    NOT NULL DEFAULT '',
	expires_ms    INTEGER NOT NULL DEFAULT 0,
	created_ms    INTEGER NOT NULL DEFAULT 0
) STRICT;
