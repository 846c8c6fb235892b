-- Nova schema, version 3 on PostgreSQL: each narrow event's recipients
-- indexed, the wide ones (over 64 recipients) in a partial index (see
-- sql/003_outbox_recipients.sql).
CREATE TABLE outbox_recipients (
    user_id  bigint NOT NULL,
    event_id bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX outbox_recipients_event ON outbox_recipients (event_id);
CREATE INDEX outbox_wide ON outbox (id) WHERE json_array_length(recipients::json) > 64;

CREATE FUNCTION nova_outbox_recipients_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF json_array_length(NEW.recipients::json) <= 64 THEN
        INSERT INTO outbox_recipients (user_id, event_id)
        SELECT value::bigint, NEW.id FROM json_array_elements_text(NEW.recipients::json)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_recipients_add AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION nova_outbox_recipients_add();

INSERT INTO outbox_recipients (user_id, event_id)
SELECT j.value::bigint, o.id FROM outbox o, json_array_elements_text(o.recipients::json) j
WHERE json_array_length(o.recipients::json) <= 64
ON CONFLICT DO NOTHING;
