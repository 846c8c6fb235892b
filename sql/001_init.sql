-- Nova schema, version 1: the whole product.
--
-- Times are UNIX seconds as REAL (sub-second precision). Ids are INTEGER
-- PRIMARY KEYs. Every lookup path of the domain code has an index; every
-- relation that a double-submit could duplicate has a unique constraint.
-- The migration runner (common/migrate.c) runs this file in one transaction
-- and then sets PRAGMA user_version.

-- Accounts. password_hash is NULL for the reserved system users, who
-- therefore can never log in. Names are compared case-sensitively.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    user_name     TEXT    NOT NULL UNIQUE,
    password_hash TEXT,
    email         TEXT    NOT NULL DEFAULT '',
    phone         TEXT    NOT NULL DEFAULT '',
    avatar_url    TEXT    NOT NULL DEFAULT '',
    is_system     INTEGER NOT NULL DEFAULT 0 CHECK (is_system IN (0, 1)),
    created_at    REAL    NOT NULL
);

-- Case-sensitive substring search on names (POST /friend/find): a trigram
-- index answers substrings of 3+ characters without scanning every user.
CREATE VIRTUAL TABLE users_name_trigram USING fts5 (
    user_name, content = 'users', content_rowid = 'id', tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER users_name_trigram_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_name_trigram (rowid, user_name) VALUES (new.id, new.user_name);
END;
CREATE TRIGGER users_name_trigram_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_name_trigram (users_name_trigram, rowid, user_name)
    VALUES ('delete', old.id, old.user_name);
END;
CREATE TRIGGER users_name_trigram_update AFTER UPDATE OF user_name ON users BEGIN
    INSERT INTO users_name_trigram (users_name_trigram, rowid, user_name)
    VALUES ('delete', old.id, old.user_name);
    INSERT INTO users_name_trigram (rowid, user_name) VALUES (new.id, new.user_name);
END;

-- The two reserved users. Their ids are fixed so that code can name them.
INSERT INTO users (id, user_name, password_hash, is_system, created_at)
VALUES (1, '#SYSTEM', NULL, 1, 0), (2, '#DELETED', NULL, 1, 0);

-- Login sessions. Only a BLAKE2b hash of the cookie token is stored.
-- A session expires when last_seen + idle timeout or expires_at passes.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB    NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at REAL    NOT NULL,
    last_seen  REAL    NOT NULL,
    expires_at REAL    NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_idle ON sessions (last_seen);

-- Friend groups. Every user has exactly one default group, named ''.
CREATE TABLE friend_groups (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    UNIQUE (id, user_id)
);
CREATE INDEX friend_groups_user ON friend_groups (user_id, is_default DESC, id);
CREATE UNIQUE INDEX friend_groups_one_default ON friend_groups (user_id) WHERE is_default = 1;

-- Chats. A chat named '' is private: made by a friendship, exactly two
-- members. The owner is always a member (kept by the domain code).
CREATE TABLE chats (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    owner_id   INTEGER NOT NULL REFERENCES users (id),
    created_at REAL    NOT NULL
);
CREATE INDEX chats_owner ON chats (owner_id);

-- Friendships, one row per side: (user_id sees friend_id). Both rows are
-- written and removed together. group_id must be one of user_id's groups
-- (the composite foreign key enforces it); chat_id is their private chat.
CREATE TABLE friends (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    nickname   TEXT    NOT NULL DEFAULT '',
    group_id   INTEGER NOT NULL,
    chat_id    INTEGER NOT NULL REFERENCES chats (id),
    created_at REAL    NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    FOREIGN KEY (group_id, user_id) REFERENCES friend_groups (id, user_id),
    CHECK (user_id <> friend_id)
) WITHOUT ROWID;
CREATE INDEX friends_friend ON friends (friend_id);
CREATE INDEX friends_group ON friends (group_id);
CREATE INDEX friends_chat ON friends (chat_id);

-- Pending friend invitations; one per (sender, receiver), a repeat
-- replaces it. source_chat_id NULL means the source "search"; otherwise it
-- is the id of the chat where the two met (kept as history, no reference).
CREATE TABLE friend_invitations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    receiver_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    comment        TEXT    NOT NULL DEFAULT '',
    source_chat_id INTEGER,
    created_at     REAL    NOT NULL,
    UNIQUE (sender_id, receiver_id),
    CHECK (sender_id <> receiver_id)
);
CREATE INDEX friend_invitations_receiver ON friend_invitations (receiver_id, id);

-- Chat membership. Admins are members with is_admin = 1; the owner is
-- never flagged admin. The rowid keeps the order in which members joined.
CREATE TABLE chat_members (
    id        INTEGER PRIMARY KEY,
    chat_id   INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_admin  INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    joined_at REAL    NOT NULL,
    UNIQUE (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id, chat_id);

-- A user's relation to a chat: nickname and read watermark (the id of the
-- newest message the user has read). It survives leaving the chat, so the
-- user's read marks stay visible in read_users, and goes with the user.
CREATE TABLE chat_relations (
    chat_id      INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    nickname     TEXT    NOT NULL DEFAULT '',
    last_read_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX chat_relations_user ON chat_relations (user_id);
CREATE INDEX chat_relations_read ON chat_relations (chat_id, last_read_id);

-- Messages. Recall rewrites the row (text, sender #DELETED, reply cleared).
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id   INTEGER NOT NULL REFERENCES users (id),
    content     TEXT    NOT NULL,
    send_time   REAL    NOT NULL,
    reply_to_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    recalled    INTEGER NOT NULL DEFAULT 0 CHECK (recalled IN (0, 1))
);
CREATE INDEX messages_chat ON messages (chat_id, id);
CREATE INDEX messages_chat_time ON messages (chat_id, send_time);
CREATE INDEX messages_sender ON messages (sender_id);
CREATE INDEX messages_reply ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;

-- Delete-for-me marks: one row per (user, message).
CREATE TABLE message_deletions (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, message_id)
) WITHOUT ROWID;
CREATE INDEX message_deletions_message ON message_deletions (message_id);

-- Pending invitations to group chats; one per (chat, user, inviter).
CREATE TABLE chat_invitations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id    INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at REAL    NOT NULL,
    UNIQUE (chat_id, user_id, invited_by)
);
CREATE INDEX chat_invitations_user ON chat_invitations (user_id);
CREATE INDEX chat_invitations_inviter ON chat_invitations (invited_by);

-- The outbox: every notification, written in the transaction of the change
-- that caused it. recipients is a JSON array of user ids resolved at write
-- time; when session_id is set, only that session's sockets receive it.
-- origin/request_id name the socket action that caused the event (if any),
-- so that socket alone sees its request_id. Never insert explicit ids.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL    NOT NULL,
    action     TEXT    NOT NULL,
    data       TEXT    NOT NULL CHECK (json_valid(data)),
    recipients TEXT    NOT NULL CHECK (json_valid(recipients)),
    session_id INTEGER,
    origin     TEXT,
    request_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_created ON outbox (created_at);

-- Each running nova-realtime records here how far it has delivered.
CREATE TABLE realtime_daemons (
    name         TEXT    PRIMARY KEY,
    pid          INTEGER NOT NULL,
    started_at   REAL    NOT NULL,
    delivered_id INTEGER NOT NULL,
    sockets      INTEGER NOT NULL DEFAULT 0,
    updated_at   REAL    NOT NULL
);

-- Views for operators: `sqlite3 data/nova.db 'select * from outbox_recent'`.
CREATE VIEW outbox_recent AS
SELECT id,
       strftime('%Y-%m-%d %H:%M:%f', created_at, 'unixepoch') AS time,
       action,
       CASE WHEN session_id IS NULL THEN 'users ' || recipients
            ELSE 'session ' || session_id END AS recipients,
       substr(data, 1, 120) AS data
FROM outbox
ORDER BY id DESC
LIMIT 50;

CREATE VIEW sessions_active AS
SELECT s.id, u.user_name,
       strftime('%Y-%m-%d %H:%M:%S', s.created_at, 'unixepoch') AS created,
       strftime('%Y-%m-%d %H:%M:%S', s.last_seen, 'unixepoch') AS last_seen,
       strftime('%Y-%m-%d %H:%M:%S', s.expires_at, 'unixepoch') AS expires
FROM sessions s JOIN users u ON u.id = s.user_id
ORDER BY s.last_seen DESC;
