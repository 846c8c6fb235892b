/* db_pg.c - the PostgreSQL engine of the storage seam (libpq).
 *
 * Statements are written in SQLite's dialect with ? or ?N parameters;
 * prepare turns them into $N and prepares them on the server by name, on
 * first use and again after the connection was made anew (the epoch).
 * Parameters travel as text (blobs in binary), results come back as text
 * and are converted on reading; booleans read as 1 and 0.
 *
 * Writers run one at a time: db_begin takes a transaction-scoped advisory
 * lock that every writer of every host takes (WRITE_LOCK), so the domain's
 * check-then-change is as safe as on SQLite and outbox ids, drawn from a
 * sequence only under that lock, become visible in the order they were
 * drawn (DESIGN.md "Scaling out" has the argument).
 *
 * A connection that breaks fails the statement and its transaction
 * (ERR_UNAVAILABLE, so 503 for nova-api); the next transaction connects
 * anew, at most every RECONNECT_GAP seconds. */
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_engine.h"
#include "log.h"

/* The one writers' advisory lock: "Nova" (0x4E6F7661) in decimal. */
#define WRITE_LOCK "1315927649"

enum {
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_FLOAT8 = 701,
};
#define RECONNECT_GAP 0.25 /* seconds between attempts while PostgreSQL is away */

typedef struct pg_param {
    char num[32];   /* a number's text */
    char *heap;     /* a copied text or blob */
    const char *value;
    int len, format;
    unsigned type;  /* the type told to the server at prepare; 0: infer */
} pg_param;

typedef struct pg_stmt {
    db_stmt base;
    char name[24];
    char *sql; /* with $N parameters */
    int nparams;
    unsigned epoch; /* the connection it is prepared on; 0: not yet */
    pg_param *params;
    PGresult *res;
    int row, rows;
    bool ran;
    unsigned char *blob; /* the last bytea read, decoded */
} pg_stmt;

typedef struct pg_conn {
    PGconn *conn;
    bool in_tx;     /* BEGIN sent, no COMMIT/ROLLBACK yet */
    bool tx_broken; /* the connection broke inside it: fail until rollback */
    bool notified;  /* this transaction NOTIFYs at commit */
    bool notified_before_step; /* notified when the savepoint began */
    long changes;
    unsigned names;
    char sqlstate[6];
    char message[300];
} pg_conn;

#define PC(db) ((pg_conn *)(db)->conn)
#define PS(st) ((pg_stmt *)(st))

/* Remember why the last call failed: SQLSTATE and message (for logs). */
static void note_failure(pg_conn *pc, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!state || PQstatus(pc->conn) == CONNECTION_BAD) state = "08006";
    if (!msg || !msg[0]) msg = pc->conn ? PQerrorMessage(pc->conn) : "no connection";
    snprintf(pc->sqlstate, sizeof pc->sqlstate, "%s", state);
    snprintf(pc->message, sizeof pc->message, "%s", msg);
    size_t n = strlen(pc->message);
    while (n && (pc->message[n - 1] == '\n' || pc->message[n - 1] == ' '))
        pc->message[--n] = '\0';
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    log_debug("postgresql: %s", message);
}

/* The session's settings, after every (re)connect. */
static int session_setup(nova_db *db)
{
    pg_conn *pc = PC(db);
    char sql[160];
    /* synchronous_commit stays the server's (on by default): off would
     * lose the last commits when the server crashes, after their events
     * were delivered. */
    snprintf(sql, sizeof sql, "SET lock_timeout = %d; SET TIME ZONE 'UTC'",
             db->busy_ms > 0 ? db->busy_ms : 1);
    PGresult *res = PQexec(pc->conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) note_failure(pc, res);
    PQclear(res);
    return ok ? 0 : -1;
}

static PGconn *connect_to(const nova_config *cfg)
{
    /* The URI's own parameters win over these defaults. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *values[] = {"5", log_program_name(), cfg->db_path, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn) PQsetNoticeProcessor(conn, quiet_notices, NULL);
    return conn;
}

static int pg_open(nova_db *db, nova_err *err)
{
    pg_conn *pc = calloc(1, sizeof *pc);
    if (!pc) return nova_fail(err, ERR_INTERNAL, "out of memory");
    db->conn = pc;
    db->busy_ms = (int)db->cfg->busy_timeout_ms;
    pc->conn = connect_to(db->cfg);
    if (!pc->conn || PQstatus(pc->conn) != CONNECTION_OK || session_setup(db)) {
        note_failure(pc, NULL);
        log_error("cannot connect to PostgreSQL: %s", pc->message);
        return nova_fail(err, ERR_UNAVAILABLE, "database unavailable");
    }
    db->epoch = 1;
    return 0;
}

static void pg_close(nova_db *db)
{
    if (PC(db)->conn) PQfinish(PC(db)->conn);
    free(db->conn);
    db->conn = NULL;
}

/* A live connection for the next statement: outside a transaction, one
 * that broke is made anew (at most every RECONNECT_GAP). */
static int pg_ready(nova_db *db)
{
    pg_conn *pc = PC(db);
    if (pc->tx_broken) {
        snprintf(pc->sqlstate, sizeof pc->sqlstate, "08006");
        snprintf(pc->message, sizeof pc->message, "the connection broke in this transaction");
        return -1;
    }
    if (PQstatus(pc->conn) == CONNECTION_OK) return 0;
    if (pc->in_tx) {
        pc->tx_broken = true;
        return pg_ready(db);
    }
    double now = nova_now();
    if (now < db->retry_at) {
        snprintf(pc->sqlstate, sizeof pc->sqlstate, "08006");
        snprintf(pc->message, sizeof pc->message, "PostgreSQL unreachable, retrying shortly");
        return -1;
    }
    PQreset(pc->conn);
    if (PQstatus(pc->conn) != CONNECTION_OK || session_setup(db)) {
        note_failure(pc, NULL);
        db->retry_at = now + RECONNECT_GAP;
        return -1;
    }
    db->epoch++; /* every statement is prepared again on this connection */
    log_info("connected to PostgreSQL again");
    return 0;
}

/* ? and ?N become $N, outside quotes; the number of parameters. */
static char *translate(const char *sql, int *nparams)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 3 + 1), *o = out;
    if (!out) return NULL;
    int highest = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
            *o++ = *p;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
        } else if (*p == '?') {
            int n = 0;
            while (p[1] >= '0' && p[1] <= '9')
                n = n * 10 + (*++p - '0');
            if (!n) n = highest + 1;
            if (n > highest) highest = n;
            o += sprintf(o, "$%d", n);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *nparams = highest;
    return out;
}

static db_stmt *pg_prepare(nova_db *db, const char *sql)
{
    pg_stmt *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->base.db = db;
    s->sql = translate(sql, &s->nparams);
    s->params = calloc((size_t)s->nparams + 1, sizeof *s->params);
    if (!s->sql || !s->params) {
        free(s->sql);
        free(s->params);
        free(s);
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "nova_%u", ++PC(db)->names);
    return &s->base;
}

static void clear_params(pg_stmt *s)
{
    for (int i = 0; i < s->nparams; i++) {
        free(s->params[i].heap);
        s->params[i] = (pg_param){0};
    }
}

static void pg_reset(db_stmt *st)
{
    pg_stmt *s = PS(st);
    PQclear(s->res);
    s->res = NULL;
    s->ran = false;
    s->row = s->rows = 0;
    PQfreemem(s->blob);
    s->blob = NULL;
    clear_params(s);
}

static void pg_finalize(db_stmt *st)
{
    pg_stmt *s = PS(st);
    pg_reset(st);
    free(s->params);
    free(s->sql);
    free(s);
}

/* Prepare (if this connection has not) and execute with the bindings. */
static int pg_run(pg_stmt *s)
{
    nova_db *db = s->base.db;
    pg_conn *pc = PC(db);
    if (pg_ready(db)) return -1;
    int n = s->nparams;
    if (s->epoch != db->epoch) {
        unsigned types[n + 1];
        for (int i = 0; i < n; i++)
            types[i] = s->params[i].type;
        PGresult *res = PQprepare(pc->conn, s->name, s->sql, n, types);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok) note_failure(pc, res);
        PQclear(res);
        if (!ok) {
            log_error("prepare failed: %s (%s)", pc->message, s->sql);
            return -1;
        }
        s->epoch = db->epoch;
    }
    const char *values[n + 1];
    int lengths[n + 1], formats[n + 1];
    for (int i = 0; i < n; i++) {
        values[i] = s->params[i].value;
        lengths[i] = s->params[i].len;
        formats[i] = s->params[i].format;
    }
    s->res = PQexecPrepared(pc->conn, s->name, n, values, lengths, formats, 0);
    ExecStatusType status = PQresultStatus(s->res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        note_failure(pc, s->res);
        return -1;
    }
    pc->changes = atol(PQcmdTuples(s->res));
    s->rows = PQntuples(s->res);
    s->row = -1;
    s->ran = true;
    return 0;
}

static int pg_step(db_stmt *st)
{
    pg_stmt *s = PS(st);
    if (!s->ran && pg_run(s)) return -1;
    return ++s->row < s->rows ? DB_ROW : DB_DONE;
}

static pg_param *param(db_stmt *st, int idx)
{
    pg_stmt *s = PS(st);
    if (idx < 1 || idx > s->nparams) return NULL;
    pg_param *p = &s->params[idx - 1];
    free(p->heap);
    *p = (pg_param){0};
    return p;
}

static void pg_bind_i64(db_stmt *st, int idx, int64_t v)
{
    pg_param *p = param(st, idx);
    if (!p) return;
    snprintf(p->num, sizeof p->num, "%lld", (long long)v);
    p->value = p->num;
    p->type = OID_INT8;
}

static void pg_bind_double(db_stmt *st, int idx, double v)
{
    pg_param *p = param(st, idx);
    if (!p) return;
    snprintf(p->num, sizeof p->num, "%.17g", v);
    p->value = p->num;
    p->type = OID_FLOAT8;
}

static void pg_bind_text(db_stmt *st, int idx, const char *text)
{
    pg_param *p = param(st, idx);
    if (!p || !text) return;
    p->heap = strdup(text);
    p->value = p->heap;
}

static void pg_bind_blob(db_stmt *st, int idx, const void *bytes, size_t len)
{
    pg_param *p = param(st, idx);
    if (!p) return;
    p->heap = malloc(len ? len : 1);
    if (!p->heap) return;
    memcpy(p->heap, bytes, len);
    p->value = p->heap;
    p->len = (int)len;
    p->format = 1;
    p->type = OID_BYTEA;
}

static int pg_param_count(db_stmt *st)
{
    return PS(st)->nparams;
}

static const char *value_of(db_stmt *st, int col)
{
    pg_stmt *s = PS(st);
    if (!s->res || s->row < 0 || s->row >= s->rows || col >= PQnfields(s->res) ||
        PQgetisnull(s->res, s->row, col))
        return NULL;
    return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_i64(db_stmt *st, int col)
{
    const char *v = value_of(st, col);
    if (!v) return 0;
    if (v[0] == 't' && !v[1]) return 1; /* a boolean */
    if (v[0] == 'f' && !v[1]) return 0;
    return strtoll(v, NULL, 10);
}

static double pg_col_double(db_stmt *st, int col)
{
    const char *v = value_of(st, col);
    return v ? strtod(v, NULL) : 0;
}

static const char *pg_col_text(db_stmt *st, int col)
{
    return value_of(st, col);
}

static const void *pg_col_blob(db_stmt *st, int col, size_t *len)
{
    pg_stmt *s = PS(st);
    const char *v = value_of(st, col);
    *len = 0;
    if (!v) return NULL;
    PQfreemem(s->blob);
    s->blob = PQunescapeBytea((const unsigned char *)v, len);
    return s->blob;
}

static bool pg_col_is_null(db_stmt *st, int col)
{
    return value_of(st, col) == NULL;
}

static long pg_changes(nova_db *db)
{
    return PC(db)->changes;
}

static const char *pg_error_text(nova_db *db)
{
    return PC(db)->message[0] ? PC(db)->message : "no error";
}

static bool pg_last_was_busy(nova_db *db)
{
    return !strcmp(PC(db)->sqlstate, "55P03");
}

/* Classes and states that mean "the storage is away or overloaded", not a
 * bug: connection (08), resources (53: disk full, out of memory, too many
 * connections), operator intervention (57: shutdown, cancel, restarting),
 * system errors (58), a lock not granted in time, serialization, and a
 * read-only server (a standby after failover). */
static bool pg_last_was_unavailable(nova_db *db)
{
    const char *s = PC(db)->sqlstate;
    return !strncmp(s, "08", 2) || !strncmp(s, "53", 2) || !strncmp(s, "57", 2) ||
           !strncmp(s, "58", 2) || !strcmp(s, "55P03") || !strcmp(s, "40001") ||
           !strcmp(s, "40P01") || !strcmp(s, "25006");
}

/* Run fixed SQL (one or several statements); 0 or -1. */
static int simple(nova_db *db, const char *sql, PGresult **out)
{
    pg_conn *pc = PC(db);
    if (pg_ready(db)) return -1;
    PGresult *res = PQexec(pc->conn, sql);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        note_failure(pc, res);
        PQclear(res);
        return -1;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int pg_exec_script(nova_db *db, const char *sql)
{
    return simple(db, sql, NULL);
}

static void pg_rollback(nova_db *db)
{
    pg_conn *pc = PC(db);
    if (PQstatus(pc->conn) == CONNECTION_OK && PQtransactionStatus(pc->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(pc->conn, "ROLLBACK");
        PQclear(res);
    }
    pc->in_tx = pc->tx_broken = false;
}

/* BEGIN plus a first statement (the lock), in one round trip. A
 * connection found dead only now (the server restarted since the last
 * transaction) is made anew and the BEGIN tried once more: nothing of the
 * transaction has run yet. */
static int begin_with(nova_db *db, const char *sql, PGresult **out)
{
    pg_conn *pc = PC(db);
    int rc = simple(db, sql, out);
    if (rc && PQstatus(pc->conn) != CONNECTION_OK) rc = simple(db, sql, out);
    if (rc) {
        pg_rollback(db);
        return -1;
    }
    pc->in_tx = true;
    pc->notified = false;
    return 0;
}

static int pg_begin(nova_db *db)
{
    return begin_with(db, "BEGIN; SELECT pg_advisory_xact_lock(" WRITE_LOCK ")", NULL);
}

static int pg_begin_nowait(nova_db *db, bool *busy)
{
    PGresult *res = NULL;
    if (begin_with(db, "BEGIN; SELECT pg_try_advisory_xact_lock(" WRITE_LOCK ")", &res))
        return -1;
    bool got = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!got) {
        pg_rollback(db);
        *busy = true;
    }
    return 0;
}

static int pg_begin_read(nova_db *db)
{
    return begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL);
}

static int pg_commit(nova_db *db)
{
    pg_conn *pc = PC(db);
    PGresult *res = NULL;
    if (simple(db, "COMMIT", &res)) return -1;
    /* COMMIT of a transaction that failed answers ROLLBACK, not an error. */
    bool committed = !strcmp(PQcmdStatus(res), "COMMIT");
    PQclear(res);
    pc->in_tx = false;
    if (!committed) {
        snprintf(pc->sqlstate, sizeof pc->sqlstate, "25P02");
        snprintf(pc->message, sizeof pc->message, "the transaction failed and was rolled back");
        return -1;
    }
    return 0;
}

static void pg_set_busy_timeout(nova_db *db, int ms)
{
    (void)ms; /* db->busy_ms is set: apply it */
    if (PQstatus(PC(db)->conn) == CONNECTION_OK) session_setup(db);
}

static int pg_schema_version(nova_db *db)
{
    PGresult *res = NULL;
    if (simple(db, "SELECT to_regclass('nova_schema') IS NOT NULL", &res)) return -1;
    bool exists = !strcmp(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    if (!exists) return 0;
    if (simple(db, "SELECT coalesce(max(version), 0) FROM nova_schema", &res)) return -1;
    int version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return version;
}

static int pg_set_schema_version(nova_db *db, int version)
{
    char sql[80];
    snprintf(sql, sizeof sql, "UPDATE nova_schema SET version = %d", version);
    return simple(db, sql, NULL);
}

static int64_t pg_data_version(nova_db *db)
{
    (void)db; /* none: the tailer reads on every poll */
    return -1;
}

static const char SQL_NOTIFY[] = "SELECT pg_notify('nova_outbox', '')";

static int pg_wake_listeners(nova_db *db)
{
    if (PC(db)->notified) return 0; /* once per transaction is enough */
    db_stmt *st = db_prepare(db, SQL_NOTIFY);
    if (!st) return -1;
    int rc = db_step(st);
    db_done(st);
    if (rc < 0) return -1;
    PC(db)->notified = true;
    return 0;
}

/* A NOTIFY inside a step that is undone is undone with it: the flag
 * follows, so that a later event of the transaction notifies again. */
static int pg_savepoint(nova_db *db, enum db_savepoint op)
{
    pg_conn *pc = PC(db);
    if (op == DB_SAVE) {
        pc->notified_before_step = pc->notified;
        return simple(db, "SAVEPOINT nova_step", NULL);
    }
    if (op == DB_RELEASE) return simple(db, "RELEASE nova_step", NULL);
    if (simple(db, "ROLLBACK TO nova_step; RELEASE nova_step", NULL)) return -1;
    pc->notified = pc->notified_before_step;
    return 0;
}

const struct db_engine db_engine_postgres = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .step = pg_step,
    .bind_i64 = pg_bind_i64,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .param_count = pg_param_count,
    .col_i64 = pg_col_i64,
    .col_double = pg_col_double,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .col_is_null = pg_col_is_null,
    .changes = pg_changes,
    .error_text = pg_error_text,
    .last_was_busy = pg_last_was_busy,
    .last_was_unavailable = pg_last_was_unavailable,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .begin_read = pg_begin_read,
    .begin_nowait = pg_begin_nowait,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .set_busy_timeout = pg_set_busy_timeout,
    .schema_version = pg_schema_version,
    .set_schema_version = pg_set_schema_version,
    .data_version = pg_data_version,
    .wake_listeners = pg_wake_listeners,
    .savepoint = pg_savepoint,
};

/* --- the listener --------------------------------------------------------- */

nova_db *db_listener_open(const nova_config *cfg)
{
    if (db_kind_of(cfg->db_path) != DB_POSTGRES) return NULL;
    nova_err err;
    nova_db *db = db_open(cfg, &err);
    if (!db) return NULL;
    if (simple(db, "LISTEN nova_outbox", NULL) || PQsetnonblocking(PC(db)->conn, 1)) {
        log_error("LISTEN failed: %s", PC(db)->message);
        db_close(db);
        return NULL;
    }
    return db;
}

int db_listener_fd(nova_db *db)
{
    return PQsocket(PC(db)->conn);
}

int db_listener_drain(nova_db *db)
{
    PGconn *conn = PC(db)->conn;
    if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) return -1;
    int woken = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        woken = 1;
        PQfreemem(n);
    }
    return woken;
}
