-- A model's keys in their order without a sort: listing the models reads
-- model_keys by (model_ref, position); the primary key (model_ref, key_id)
-- would need every key sorted first. key_id rides along in the index.
CREATE INDEX model_keys_position_idx ON model_keys (model_ref, position);
