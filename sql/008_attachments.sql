-- Nova schema, version 8: attachments (docs/API.md "[ext] Attachments").
--
-- One row per upload. The bytes are stored once per content under the
-- attachment directory, named by the hex SHA-256 of the content (hash):
-- several rows may share a file (deduplication); a file no row names is
-- deleted by nova-admin attachments-gc. message_id is NULL until the
-- uploader sends a message carrying it (then set once); recalling the
-- message deletes the row. uploader_id goes NULL with the account (the
-- rows of sent messages stay for the other members; unsent ones are then
-- removed by the next attachments-gc). IF NOT EXISTS: a database set back
-- to an older version (tests/integration/test_unread_counts.py) migrates again.
CREATE TABLE IF NOT EXISTS attachments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    uploader_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    message_id  INTEGER UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    hash        TEXT    NOT NULL CHECK (length(hash) = 64),
    name        TEXT    NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    mime        TEXT    NOT NULL,
    created_at  REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_hash ON attachments (hash);
CREATE INDEX IF NOT EXISTS attachments_chat ON attachments (chat_id);
CREATE INDEX IF NOT EXISTS attachments_uploader ON attachments (uploader_id);
CREATE INDEX IF NOT EXISTS attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;
