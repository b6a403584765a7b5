-- Where a record's token counts come from (SPEC section 6): provider,
-- estimated (keygate's tokenizer) or partial (a stream cut before the
-- provider's usage arrived). Older records predate the distinction.
ALTER TABLE usage_records ADD COLUMN usage_source TEXT NOT NULL DEFAULT '';
