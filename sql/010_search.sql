-- Nova schema, version 10: full-text search (docs/API.md "[ext] Search").
--
-- message_search is an FTS5 index over the view message_search_source:
-- every message that is not recalled, as its text (body) and a token
-- naming its chat (chat: 'c' || chat_id). The chat token lets a search
-- keep to the caller's chats inside the index (body : (...) AND
-- chat : (c1 OR c2 ...)), so that its work grows with the matches in those
-- chats, not in the whole database. External content: the index holds no
-- copy of the text; snippets read it back from the view by rowid.
--
-- The triggers keep the index in the transaction that changes a message.
-- FTS5's 'delete' must be given exactly the values that were indexed, and
-- only for a row that is indexed: hence the conditions on recalled (a
-- recalled message left the index when it was recalled). Chat deletion
-- reaches them through the cascade of messages.chat_id. IF NOT EXISTS: a
-- database set back to an older version migrates again.
CREATE VIEW IF NOT EXISTS message_search_source AS
    SELECT id, content AS body, 'c' || chat_id AS chat FROM messages WHERE recalled = 0;

CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5 (
    body, chat,
    content = 'message_search_source', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (message_search) VALUES ('rebuild');

CREATE TRIGGER IF NOT EXISTS message_search_insert AFTER INSERT ON messages
WHEN new.recalled = 0 BEGIN
    INSERT INTO message_search (rowid, body, chat) VALUES (new.id, new.content, 'c' || new.chat_id);
END;

CREATE TRIGGER IF NOT EXISTS message_search_edit AFTER UPDATE OF content, chat_id ON messages
WHEN old.recalled = 0 AND new.recalled = 0 BEGIN
    INSERT INTO message_search (message_search, rowid, body, chat)
        VALUES ('delete', old.id, old.content, 'c' || old.chat_id);
    INSERT INTO message_search (rowid, body, chat) VALUES (new.id, new.content, 'c' || new.chat_id);
END;

CREATE TRIGGER IF NOT EXISTS message_search_recall AFTER UPDATE OF recalled ON messages
WHEN old.recalled = 0 AND new.recalled = 1 BEGIN
    INSERT INTO message_search (message_search, rowid, body, chat)
        VALUES ('delete', old.id, old.content, 'c' || old.chat_id);
END;

-- Nova never takes a recall back, but an operator's fix or an undo may:
-- the message comes back into the index.
CREATE TRIGGER IF NOT EXISTS message_search_unrecall AFTER UPDATE OF recalled ON messages
WHEN old.recalled = 1 AND new.recalled = 0 BEGIN
    INSERT INTO message_search (rowid, body, chat) VALUES (new.id, new.content, 'c' || new.chat_id);
END;

CREATE TRIGGER IF NOT EXISTS message_search_delete AFTER DELETE ON messages
WHEN old.recalled = 0 BEGIN
    INSERT INTO message_search (message_search, rowid, body, chat)
        VALUES ('delete', old.id, old.content, 'c' || old.chat_id);
END;
