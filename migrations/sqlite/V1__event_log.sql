-- The event log: the single source of truth for everything Berth knows.
-- Times are microseconds since the Unix epoch (UTC).
CREATE TABLE events (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    category        TEXT    NOT NULL,
    stream_name     TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version > 0),
    payload         TEXT    NOT NULL,
    actor           TEXT,
    correlation_id  TEXT,
    causation_id    TEXT,
    command_id      TEXT,
    recorded_at     INTEGER NOT NULL,
    CONSTRAINT events_event_id_unique UNIQUE (event_id),
    CONSTRAINT events_stream_version_unique UNIQUE (category, stream_name, stream_version)
);

CREATE INDEX events_recorded_at ON events (recorded_at, position);
CREATE INDEX events_type_position ON events (event_type, position);
CREATE INDEX events_actor_position ON events (actor, position);
CREATE INDEX events_category_position ON events (category, position);

-- Commands already handled, so that a retried command returns its first outcome.
CREATE TABLE commands (
    command_id      TEXT    PRIMARY KEY,
    category        TEXT    NOT NULL,
    stream_name     TEXT    NOT NULL,
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    stream_version  INTEGER NOT NULL
);

-- Events are facts: the database itself refuses to change or remove them.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE on events is refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE on events is refused'); END;
CREATE TRIGGER commands_no_update BEFORE UPDATE ON commands
BEGIN SELECT RAISE(ABORT, 'commands are immutable: UPDATE on commands is refused'); END;
CREATE TRIGGER commands_no_delete BEFORE DELETE ON commands
BEGIN SELECT RAISE(ABORT, 'commands are immutable: DELETE on commands is refused'); END;

-- Read model: one row per stream, kept in step with the log.
CREATE TABLE stream_summaries (
    category        TEXT    NOT NULL,
    stream_name     TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    event_count     INTEGER NOT NULL,
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    last_event_type TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (category, stream_name)
);
