/* stats.h - nova-api's metrics, summed over every worker of the process.
 *
 * The supervisor maps one table of counters shared with the workers it
 * forks (api_stats_init, before the first fork); each worker adds its
 * requests to it, and whichever worker nginx hands a scrape to writes the
 * whole table (api_stats_render). */
#ifndef NOVA_API_STATS_H
#define NOVA_API_STATS_H

#include <stddef.h>

/* Map the shared table. 0, or -1 (then nothing is counted and a scrape
 * answers 503). */
int api_stats_init(size_t api_workers, size_t hash_workers);
/* In a new worker: what its process counted before the fork is not its own. */
void api_stats_worker_start(void);
/* A request answered: route (an index of api_routes, or -1 for none), its
 * status, and the seconds it took; also the database errors counted since. */
void api_stats_request_end(int route, int status, double seconds);
/* The supervisor replaced a worker that died. */
void api_stats_worker_restarted(void);
/* The text of a scrape (malloc'd), or NULL. */
char *api_stats_render(size_t *len);

#endif
