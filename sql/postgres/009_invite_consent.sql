-- Nova schema, version 9: the invitee's consent to a group invitation
-- (group-invite-flow = consent, docs/API.md "Group invitations with
-- consent"). Both marks concern the pair (chat, invited user), so every
-- pending invitation of the pair carries the same values:
--   accepted     the invitee has accepted and waits for an approval;
--   approved_by  the owner or an admin who approved (an invitation made
--                by the owner or an admin is approved by its inviter),
--                waiting for the invitee; NULL when not approved.
-- Both are kept in either flow (so that switching flows finds them right),
-- but only the consent flow acts on them. Pending invitations made by the
-- owner or an admin count as approved from the start:
ALTER TABLE chat_invitations ADD COLUMN accepted bigint NOT NULL DEFAULT 0;
ALTER TABLE chat_invitations ADD COLUMN approved_by bigint REFERENCES users (id) ON DELETE SET NULL;
-- Account deletion clears the approvals its user gave.
CREATE INDEX chat_invitations_approver ON chat_invitations (approved_by)
    WHERE approved_by IS NOT NULL;

UPDATE chat_invitations SET approved_by = (SELECT min(i.invited_by) FROM chat_invitations i
    JOIN chats c ON c.id = i.chat_id
    WHERE i.chat_id = chat_invitations.chat_id AND i.user_id = chat_invitations.user_id
    AND (i.invited_by = c.owner_id OR EXISTS (SELECT 1 FROM chat_members m
        WHERE m.chat_id = i.chat_id AND m.user_id = i.invited_by AND m.is_admin = 1)));
