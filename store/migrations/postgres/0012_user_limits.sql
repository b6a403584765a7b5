-- A user's limits (SPEC section 3): the models, rpm, tpm and budget of a
-- gateway token, as JSON, applied when the user's login token calls the
-- client API. '' means none.
ALTER TABLE users ADD COLUMN limits TEXT NOT NULL DEFAULT '';
