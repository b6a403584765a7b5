-- What a key source learns that must outlive a restart (SPEC section 5): an
-- OAuth 2.0 refresh token the server rotated. name is the key's id (a keyed
-- hash of the source); value is sealed (AES-256-GCM) with the master key.
CREATE TABLE source_secrets (
	name       TEXT    PRIMARY KEY,
	value      BLOB    NOT NULL,
	updated_ms INTEGER NOT NULL
) STRICT;
