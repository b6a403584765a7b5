-- Azure OpenAI's api-version, per deployment (SPEC section 3).
ALTER TABLE models ADD COLUMN api_version TEXT NOT NULL DEFAULT '';
