-- Read model of Helm chart versions: one row per chart manifest, from its push event. A
-- version is listed while its tag points at the manifest (see repository_tags).
CREATE TABLE helm_charts (
    repository  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    registry    TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    tag         TEXT NOT NULL,
    archive     TEXT NOT NULL,
    provenance  TEXT,
    metadata    TEXT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX helm_charts_registry ON helm_charts (registry, name, version);
