-- Nova schema, version 6: editing and reacting to messages (docs/API.md,
-- "[ext] Edit and react").
--
-- edited_at is NULL until the sender first edits the message; edit_count
-- counts the edits (capped by NOVA_EDIT_MAX). A reaction is one row per
-- (message, user, emoji): reacting twice is one row (idempotent), and
-- deleting the message or the user removes it (ON DELETE CASCADE).
-- seq orders a message's emojis by their first reaction.
ALTER TABLE messages ADD COLUMN edited_at REAL;
ALTER TABLE messages ADD COLUMN edit_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE message_reactions (
    seq        INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL,
    UNIQUE (message_id, user_id, emoji)
);
CREATE INDEX message_reactions_user ON message_reactions (user_id);
