-- Nova schema, version 9: the invitee's consent to a group invitation
-- (group-invite-flow = consent, docs/API.md "Group invitations with
-- consent"). Both marks concern the pair (chat, invited user), so every
-- pending invitation of the pair carries the same values:
--   accepted     the invitee has accepted and waits for an approval;
--   approved_by  the owner or an admin who approved (an invitation made
--                by the owner or an admin is approved by its inviter),
--                waiting for the invitee; NULL when not approved.
-- In the default flow (approval) both stay 0 and NULL.
ALTER TABLE chat_invitations ADD COLUMN accepted bigint NOT NULL DEFAULT 0;
ALTER TABLE chat_invitations ADD COLUMN approved_by bigint REFERENCES users (id) ON DELETE SET NULL;
-- Account deletion clears the approvals its user gave.
CREATE INDEX chat_invitations_approver ON chat_invitations (approved_by)
    WHERE approved_by IS NOT NULL;
