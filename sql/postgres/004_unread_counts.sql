-- Nova schema, version 4: unread counts kept with the read watermark, so
-- that a chat's unread_count costs one row read instead of counting every
-- unread message (it was O(unread): 66 ms for a million).
--
-- chats.message_count is the number of the chat's messages (a message is
-- never deleted on its own: only with its whole chat), raised by every
-- send in the send's transaction. chat_relations.read_count is the number
-- of the chat's messages up to last_read_id, set whenever the watermark
-- moves, from message_count in the same statement. The unread count is
-- their difference. nova-admin check compares both with the messages.
ALTER TABLE chats ADD COLUMN message_count bigint NOT NULL DEFAULT 0;
ALTER TABLE chat_relations ADD COLUMN read_count bigint NOT NULL DEFAULT 0;

UPDATE chats SET message_count = (SELECT count(*) FROM messages m WHERE m.chat_id = chats.id);
UPDATE chat_relations SET read_count = (SELECT count(*) FROM messages m
    WHERE m.chat_id = chat_relations.chat_id AND m.id <= chat_relations.last_read_id);
