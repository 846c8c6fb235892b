-- Nova schema, version 2: the outbox console (docs/CONSOLE.md).
--
-- Operators are the people who run Nova: not chat users, no row in users,
-- created by `nova-admin operator add`. Their sessions are stored like chat
-- sessions (only a BLAKE2b hash of the cookie token) in a table of their
-- own, so that no chat session can ever pass for one.
CREATE TABLE operators (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    REAL    NOT NULL
);

CREATE TABLE operator_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  BLOB    NOT NULL UNIQUE,
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at  REAL    NOT NULL,
    last_seen   REAL    NOT NULL,
    expires_at  REAL    NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);

-- Each nova-realtime's delivery lag, one row per daemon and minute (the
-- largest lag its heartbeat saw in that minute), for the console's chart.
-- Pruned with the outbox's retention; not copied by nova-admin copy.
CREATE TABLE realtime_samples (
    daemon  TEXT    NOT NULL,
    minute  INTEGER NOT NULL, -- UNIX time / 60
    lag     INTEGER NOT NULL,
    sockets INTEGER NOT NULL,
    PRIMARY KEY (daemon, minute)
);
CREATE INDEX realtime_samples_minute ON realtime_samples (minute);
