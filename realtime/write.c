/* write.c - the one write bracket of nova-realtime (see rt.h, rt_write):
 * socket actions, session expiry and settling a session at connect all
 * write through it, never waiting for the lock inside the event loop. */
#include "../common/outbox.h"
#include "rt.h"

int rt_write(rt *r, const char *origin, int64_t request_id, rt_write_fn fn, void *ctx,
             nova_err *err)
{
    bool busy;
    int rc = db_begin_nowait(r->db, &busy, err);
    if (rc) return rc;
    if (busy) return ACTION_BUSY;
    if (origin) outbox_set_cause(origin, request_id);
    rc = fn(r, ctx, err);
    if (!rc) rc = db_commit(r->db, err);
    if (rc) {
        db_rollback(r->db);
        outbox_discarded();
        return rc;
    }
    outbox_committed(NULL); /* no wake-up: delivered right here */
    tail_run(r);
    return 0;
}
