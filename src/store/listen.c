/*
 * listen.c - cross-host change notification for a PostgreSQL catalog.
 *
 * Every change to the shared file index fires a row trigger (PostgreSQL
 * migration 4, dialect.c) that sends NOTIFY bfs_changes with the payload
 * "f\tBUCKET\tKEY" (a rename sends the old and the new name), delivered
 * to every listening session when the writing transaction commits.  The
 * watcher is one thread with a connection of its own: it LISTENs, waits in
 * poll() on the socket (up to LISTEN_WAKE_MS, to notice a stop), and hands
 * each notification that another session sent (not one of this process's
 * catalog connections: the mount already dropped its own changes) to the
 * callback as (bucket, key).  When its connection is lost it reconnects
 * with back-off (250 ms doubling to 5 s) and, once listening again, calls
 * the callback with (NULL, NULL): notifications sent meanwhile are lost,
 * so everything cached must go.  A change to storage_buckets, assignments
 * or settings sends the payload "c" (statement trigger, migration 5), from
 * any session, this process's too: the callback wakes the registry, which
 * reloads when the catalog version moved (its 250 ms version poll stays
 * the fallback).
 *
 * Threads: the watcher owns its connection; the callback runs on it.
 * The backend pids of the process's own catalog connections are atomics
 * in sqldb.c (bfs_db_pg_own_pid).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "sqldb.h"

#define LISTEN_WAKE_MS 200
#define LISTEN_RETRY_MIN_MS 250
#define LISTEN_RETRY_MAX_MS 5000

struct bfs_db_watch {
	struct bfs_db *db;              /* connection parameters, own pid */
	bfs_db_change_fn fn;
	void *arg;
	pthread_t thread;
	_Atomic int stop;
	PGconn *c;                      /* the watcher thread's only */
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Connects and LISTENs; NULL when it failed (the reason at debug). */
static PGconn *watch_connect(struct bfs_db_watch *w)
{
	PGconn *c = bfs_db_pg_connect(w->db);
	PGresult *res;

	if (!c)
		return NULL;
	if (PQstatus(c) == CONNECTION_OK) {
		res = PQexec(c, "LISTEN bfs_changes");
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			return c;
		}
		PQclear(res);
	}
	BFS_DEBUG("postgresql: change watcher: %.200s", PQerrorMessage(c));
	PQfinish(c);
	return NULL;
}

/*
 * "c" -> fn(CATALOG); "f\tBUCKET\tKEY" from another session ->
 * fn(FILE, bucket, key); anything else is ignored.
 */
static void deliver(struct bfs_db_watch *w, const PGnotify *n)
{
	char *p, *tab;

	if (n->extra && strcmp(n->extra, "c") == 0) {
		bfs_metrics_database_notified();
		w->fn(w->arg, BFS_CHANGE_CATALOG, NULL, NULL);
		return;
	}
	if (bfs_db_pg_own_pid(n->be_pid) || !n->extra ||
	    strncmp(n->extra, "f\t", 2) != 0)
		return;
	if (!(p = strdup(n->extra + 2)))
		return;
	if ((tab = strchr(p, '\t')) != NULL) {
		*tab = '\0';
		bfs_metrics_database_notified();
		w->fn(w->arg, BFS_CHANGE_FILE, p, tab + 1);
	}
	free(p);
}

static void *watch_thread(void *arg)
{
	struct bfs_db_watch *w = arg;
	struct pollfd pfd;
	PGnotify *n;
	/* Not listening from the start: the mount may cache meanwhile. */
	int backoff = 0, lost = !w->c;

	while (!atomic_load(&w->stop)) {
		if (!w->c) {
			if (!(w->c = watch_connect(w))) {
				backoff = backoff ? backoff * 2 :
						    LISTEN_RETRY_MIN_MS;
				if (backoff > LISTEN_RETRY_MAX_MS)
					backoff = LISTEN_RETRY_MAX_MS;
				sleep_ms(backoff);
				continue;
			}
			backoff = 0;
			if (lost) {
				/* What changed meanwhile is unknown. */
				BFS_INFO("postgresql: change watcher "
					 "reconnected; dropping cached "
					 "attributes and listings");
				w->fn(w->arg, BFS_CHANGE_LOST, NULL, NULL);
			}
			lost = 0;
		}
		pfd.fd = PQsocket(w->c);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, LISTEN_WAKE_MS) < 0 && errno != EINTR)
			pfd.revents = POLLERR;
		if (pfd.revents && PQconsumeInput(w->c) == 0) {
			char msg[256];

			snprintf(msg, sizeof(msg), "%s", PQerrorMessage(w->c));
			msg[strcspn(msg, "\n")] = '\0';
			BFS_WARN("postgresql: change watcher lost its "
				 "connection: %s", msg);
			PQfinish(w->c);
			w->c = NULL;
			lost = 1;
			continue;
		}
		while ((n = PQnotifies(w->c)) != NULL) {
			deliver(w, n);
			PQfreemem(n);
		}
	}
	if (w->c)
		PQfinish(w->c);
	w->c = NULL;
	return NULL;
}

int bfs_db_watch_start(struct bfs_db *db, bfs_db_change_fn fn, void *arg,
		       struct bfs_db_watch **out)
{
	struct bfs_db_watch *w;
	int e;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return BFS_ERR_NOMEM;
	w->db = db;
	w->fn = fn;
	w->arg = arg;
	atomic_init(&w->stop, 0);
	/* Listening before the mount serves: no change is missed after. */
	w->c = watch_connect(w);
	if ((e = pthread_create(&w->thread, NULL, watch_thread, w)) != 0) {
		if (w->c)
			PQfinish(w->c);
		free(w);
		return bfs_err_from_errno(e);
	}
	*out = w;
	return 0;
}

void bfs_db_watch_stop(struct bfs_db_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, 1);
	pthread_join(w->thread, NULL);
	free(w);
}
