-- Nova schema, version 3: each event's recipients indexed, so that a
-- resuming socket reads only its user's events (through the primary key)
-- instead of every event retained since its last_event_id.
--
-- Kept by the database itself: a trigger adds a row per recipient when an
-- event is written (so every writer, nova-admin copy included, keeps it),
-- and pruning an event removes its rows (ON DELETE CASCADE, through the
-- index on event_id). outbox.recipients stays the event's own record.
CREATE TABLE outbox_recipients (
    user_id  INTEGER NOT NULL,
    event_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, event_id)
) WITHOUT ROWID;
CREATE INDEX outbox_recipients_event ON outbox_recipients (event_id);

CREATE TRIGGER outbox_recipients_add AFTER INSERT ON outbox BEGIN
    INSERT OR IGNORE INTO outbox_recipients (user_id, event_id)
    SELECT value, NEW.id FROM json_each(NEW.recipients);
END;

INSERT OR IGNORE INTO outbox_recipients (user_id, event_id)
SELECT j.value, o.id FROM outbox o, json_each(o.recipients) j;
