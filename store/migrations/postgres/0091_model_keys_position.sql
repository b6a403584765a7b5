-- A model's keys in their order without a sort: listing the models reads
-- model_keys by (model_ref, position); key_id is in the index so the keys
-- are found from it alone.
CREATE INDEX model_keys_position_idx ON model_keys (model_ref, position, key_id);
