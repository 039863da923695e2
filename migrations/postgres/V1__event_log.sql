-- The event log: the single source of truth for everything Berth knows.
CREATE TABLE events (
    position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category        TEXT        NOT NULL,
    stream_name     TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CHECK (stream_version > 0),
    event_id        UUID        NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL CHECK (schema_version > 0),
    payload         JSONB       NOT NULL,
    actor           TEXT,
    correlation_id  TEXT,
    causation_id    TEXT,
    command_id      UUID,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_event_id_unique UNIQUE (event_id),
    CONSTRAINT events_stream_version_unique UNIQUE (category, stream_name, stream_version)
);

CREATE INDEX events_recorded_at ON events (recorded_at, position);
CREATE INDEX events_type_position ON events (event_type, position);
CREATE INDEX events_actor_position ON events (actor, position);
CREATE INDEX events_category_position ON events (category, position);

-- Commands already handled, so that a retried command returns its first outcome.
CREATE TABLE commands (
    command_id      UUID        PRIMARY KEY,
    category        TEXT        NOT NULL,
    stream_name     TEXT        NOT NULL,
    first_position  BIGINT      NOT NULL,
    last_position   BIGINT      NOT NULL,
    stream_version  BIGINT      NOT NULL
);

-- Events are facts: the database itself refuses to change or remove them.
CREATE FUNCTION berth_refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on events is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_immutable_rows BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION berth_refuse_event_change();
CREATE TRIGGER events_immutable_table BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION berth_refuse_event_change();
CREATE TRIGGER commands_immutable_rows BEFORE UPDATE OR DELETE ON commands
    FOR EACH ROW EXECUTE FUNCTION berth_refuse_event_change();

-- Read model: one row per stream, kept in step with the log.
CREATE TABLE stream_summaries (
    category        TEXT        NOT NULL,
    stream_name     TEXT        NOT NULL,
    version         BIGINT      NOT NULL,
    event_count     BIGINT      NOT NULL,
    first_position  BIGINT      NOT NULL,
    last_position   BIGINT      NOT NULL,
    last_event_type TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (category, stream_name)
);
