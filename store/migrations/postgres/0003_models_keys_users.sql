-- Models, the provider keys behind them, users and server settings (SPEC
-- section 3). A key string used by several models is one provider_keys row
-- (its id is the keyed hash of the string) linked to each model through
-- model_keys. Secrets are stored sealed (AES-256-GCM): provider_keys.secret,
-- models.key_source (its headers may carry credentials) and settings.value.
-- Times are UTC unix milliseconds.
CREATE TABLE models (
	id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	origin          TEXT             NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'config')),
	-- For config models: model_id and the entry's place among those with the
	-- same model_id, so the YAML file's models are found again at each start.
	config_key      TEXT             NOT NULL DEFAULT '',
	name            TEXT             NOT NULL DEFAULT '',
	model_id        TEXT             NOT NULL,
	provider        TEXT             NOT NULL DEFAULT '',
	type            TEXT             NOT NULL DEFAULT '',
	description     TEXT             NOT NULL DEFAULT '',
	status          TEXT             NOT NULL DEFAULT 'enabled',
	base_url        TEXT             NOT NULL DEFAULT '',
	auth_type       TEXT             NOT NULL DEFAULT '',
	key_usage_mode  TEXT             NOT NULL DEFAULT '',
	key_source      BYTEA,
	upstream_model  TEXT             NOT NULL DEFAULT '',
	fallbacks       TEXT             NOT NULL DEFAULT '[]',
	supports_vision BOOLEAN          NOT NULL DEFAULT FALSE,
	max_tokens      INTEGER          NOT NULL DEFAULT 0,
	context_window  INTEGER          NOT NULL DEFAULT 0,
	input_price     DOUBLE PRECISION NOT NULL DEFAULT 0,
	output_price    DOUBLE PRECISION NOT NULL DEFAULT 0,
	rpm             INTEGER          NOT NULL DEFAULT 0,
	tpm             INTEGER          NOT NULL DEFAULT 0,
	temperature     DOUBLE PRECISION,
	created_ms      BIGINT           NOT NULL,
	updated_ms      BIGINT           NOT NULL
);

CREATE UNIQUE INDEX models_config_key_idx ON models (config_key) WHERE config_key <> '';
CREATE INDEX models_model_id_idx ON models (model_id);

CREATE TABLE provider_keys (
	id         TEXT    PRIMARY KEY,
	secret     BYTEA   NOT NULL,
	masked     TEXT    NOT NULL,
	status     TEXT    NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
	weight     INTEGER NOT NULL DEFAULT 0,
	created_ms BIGINT  NOT NULL,
	updated_ms BIGINT  NOT NULL
);

-- position keeps a model's keys in the order given: in key_usage_mode
-- single the first healthy key serves.
CREATE TABLE model_keys (
	model_ref BIGINT  NOT NULL REFERENCES models (id) ON DELETE CASCADE,
	key_id    TEXT    NOT NULL REFERENCES provider_keys (id) ON DELETE CASCADE,
	position  INTEGER NOT NULL,
	PRIMARY KEY (model_ref, key_id)
);

CREATE INDEX model_keys_key_idx ON model_keys (key_id);

CREATE TABLE users (
	id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username      TEXT   NOT NULL UNIQUE,
	password_hash TEXT   NOT NULL,
	role          TEXT   NOT NULL CHECK (role IN ('admin', 'user')),
	created_ms    BIGINT NOT NULL
);

CREATE TABLE settings (
	name  TEXT  PRIMARY KEY,
	value BYTEA NOT NULL
);
