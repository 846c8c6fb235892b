-- Nova schema, version 7 on PostgreSQL: presence (docs/API.md "[ext] Presence and typing").
--
-- A user is online while they have a row here: one per (nova-realtime
-- instance, user), with that instance's open sockets of the user (and how
-- many of them asked for presence: watchers, whom transitions go to). A row
-- whose sockets fell to 0 is in its grace period since gone_at; it is
-- deleted (and the offline transition emitted) once the grace is over.
-- Every instance beats its heart in presence_instances; the rows of an
-- instance whose heart stopped (crash, kill -9) are put in their grace by
-- the survivors.
CREATE TABLE presence_instances (
    instance     TEXT PRIMARY KEY,
    heartbeat_at double precision NOT NULL
);
CREATE TABLE presence (
    instance TEXT    NOT NULL,
    user_id  bigint  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sockets  bigint  NOT NULL,
    watchers bigint  NOT NULL DEFAULT 0,
    gone_at  double precision,
    PRIMARY KEY (instance, user_id)
);
CREATE INDEX presence_user ON presence (user_id);
CREATE INDEX presence_gone ON presence (gone_at) WHERE sockets = 0;
-- Ephemeral events (presence, typing) are never replayed and are pruned
-- soon after they were delivered.
CREATE INDEX outbox_ephemeral ON outbox (created_at) WHERE action IN ('presence', 'typing');
