-- Pacing and hedging (SPEC section 4a): a model's hedge settings as JSON
-- ('' = no hedging), and a key's own provider limits (0 = not known).
ALTER TABLE models ADD COLUMN hedge TEXT NOT NULL DEFAULT '';
ALTER TABLE provider_keys ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provider_keys ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0;
