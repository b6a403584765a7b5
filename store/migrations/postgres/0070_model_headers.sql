-- A deployment's own headers (SPEC section 3, "headers"), sent to its
-- provider with every call: a JSON object of names to values.
ALTER TABLE models ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
