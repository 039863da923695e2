-- Read models of registries and upstream proxies: one row per live resource, its current
-- state as JSON plus the columns that lists filter and sort on. Times in microseconds.
CREATE TABLE registries (
    name          TEXT    PRIMARY KEY,
    package_type  TEXT    NOT NULL,
    labels        TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX registries_created ON registries (created_at, name);

CREATE TABLE upstream_proxies (
    name          TEXT    PRIMARY KEY,
    package_type  TEXT    NOT NULL,
    labels        TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX upstream_proxies_created ON upstream_proxies (created_at, name);

-- Upstream passwords, encrypted (AES-256-GCM); events refer to them by id only.
CREATE TABLE secrets (
    id          TEXT    PRIMARY KEY,
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
