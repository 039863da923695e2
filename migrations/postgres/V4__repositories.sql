-- Read models of repositories: the manifests each holds and where its tags point.
CREATE TABLE repository_manifests (
    repository     TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    media_type     TEXT    NOT NULL,
    size           BIGINT  NOT NULL,
    subject        TEXT,
    artifact_type  TEXT,
    pushed_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_manifests_subject ON repository_manifests (repository, subject);

CREATE TABLE repository_tags (
    repository  TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repository, tag)
);
CREATE INDEX repository_tags_digest ON repository_tags (repository, digest);
