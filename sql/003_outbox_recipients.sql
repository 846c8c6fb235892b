-- Nova schema, version 3: each event's recipients indexed, so that a
-- resuming socket reads only its user's events instead of every event
-- retained since its last_event_id.
--
-- Kept by the database itself: a trigger adds a row per recipient when an
-- event is written (so every writer, nova-admin copy included, keeps it),
-- and pruning an event removes its rows (ON DELETE CASCADE, through the
-- index on event_id). outbox.recipients stays the event's own record.
--
-- Only events with at most 64 recipients are indexed ("narrow"): a message
-- to a group of 10 000 would otherwise write 10 000 rows, twice (its
-- new_message and messages_read), in the sender's transaction. The wide
-- events have a partial index of their own, and a resume reads its user's
-- narrow events through outbox_recipients and every wide event since N
-- through outbox_wide (outbox_read_for), keeping those addressed to it.
CREATE TABLE outbox_recipients (
    user_id  INTEGER NOT NULL,
    event_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, event_id)
) WITHOUT ROWID;
CREATE INDEX outbox_recipients_event ON outbox_recipients (event_id);
CREATE INDEX outbox_wide ON outbox (id) WHERE json_array_length(recipients) > 64;

CREATE TRIGGER outbox_recipients_add AFTER INSERT ON outbox
WHEN json_array_length(NEW.recipients) <= 64 BEGIN
    INSERT OR IGNORE INTO outbox_recipients (user_id, event_id)
    SELECT value, NEW.id FROM json_each(NEW.recipients);
END;

INSERT OR IGNORE INTO outbox_recipients (user_id, event_id)
SELECT j.value, o.id FROM outbox o, json_each(o.recipients) j
WHERE json_array_length(o.recipients) <= 64;
