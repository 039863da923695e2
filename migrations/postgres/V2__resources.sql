-- Read models of registries and upstream proxies: one row per live resource, its current
-- state as JSON plus the columns that lists filter and sort on.
CREATE TABLE registries (
    name          TEXT        PRIMARY KEY,
    package_type  TEXT        NOT NULL,
    labels        JSONB       NOT NULL,
    state         JSONB       NOT NULL,
    version       BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX registries_created ON registries (created_at, name);

CREATE TABLE upstream_proxies (
    name          TEXT        PRIMARY KEY,
    package_type  TEXT        NOT NULL,
    labels        JSONB       NOT NULL,
    state         JSONB       NOT NULL,
    version       BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX upstream_proxies_created ON upstream_proxies (created_at, name);

-- Upstream passwords, encrypted (AES-256-GCM); events refer to them by id only.
CREATE TABLE secrets (
    id          UUID        PRIMARY KEY,
    nonce       BYTEA       NOT NULL,
    ciphertext  BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
