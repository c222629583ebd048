/*
 * main.c - the bucketfs daemon: `bucketfs [-f] [-d] [-o OPT[,OPT]...]
 * CONFIG MOUNTPOINT` (options may also follow the positionals, as
 * mount.fuse3 calls it).
 *
 * Start-up does every check that can fail before the mount exists, so a bad
 * config, an unreachable database or a wrong master key exit 1 with one
 * line on stderr and mount nothing: load config -> open store -> master
 * key -> sync the config's buckets into the store -> build the registry
 * (opens providers) -> the filesystem context (bfs_vfs_new: cache folder)
 * -> mount (src/fuse/mount.c: fuse_new/fuse_mount) -> daemonize (the
 * parent exits 0 only now that the mount is live).
 * Threads start only after daemonizing.  SIGHUP asks the registry thread to
 * reload the config file (a bad new config is refused and logged; the old
 * one keeps serving).  The upload queue (src/vfs/upload.c) starts last:
 * it adopts the upload journal left by a crash and finishes it in the
 * background.  On SIGTERM or unmount the loop returns and every dirty
 * file is uploaded (bounded by upload_timeout, logged); what cannot be
 * stored stays journaled for the next start.  No FUSE header here: libfuse
 * is behind bfs_mount.h (src/fuse), the filesystem behind bfs_vfs.h
 * (src/vfs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "bfs_config.h"
#include "bfs_crypto.h"
#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_mount.h"
#include "bfs_log.h"
#include "bfs_pool.h"
#include "bfs_provider.h"
#include "bfs_route.h"
#include "bfs_store.h"
#include "bfs_vfs.h"

#define BFS_VERSION "1.0.0"

/* State the SIGHUP reload works on (touched by the registry thread only
 * after start-up). */
static struct {
	struct bfs_config *cfg;
	struct bfs_store *store;
	struct bfs_registry *reg;
	struct bfs_vfs *vfs;
	int debug;
	int quiet;               /* not yet detached from the caller's stderr */
} g;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bucketfs [-f] [-d] [-o OPT[,OPT]...] CONFIG MOUNTPOINT\n"
		"\n"
		"  -f              stay in the foreground, log to stderr\n"
		"  -d              debug (implies -f): FUSE tracing, debug logs\n"
		"  -o bucket=NAME  single-bucket mode: NAME at the mount root\n"
		"  -o OPT          FUSE options (allow_other, default_permissions, ...)\n"
		"  -h, --help      this help\n"
		"  -V, --version   print the version\n");
}

/*
 * Loads the master key when its file exists.  *have = 0 when there is no
 * key file (an error later only if some bucket has a stored secret).
 */
static int load_master_key(const struct bfs_config *cfg,
			   unsigned char key[BFS_MASTER_KEY_LEN], int *have,
			   char *err, size_t errlen)
{
	char *path = bfs_config_master_key_path(cfg);
	int r = 0;

	*have = 0;
	if (!path || access(path, F_OK) != 0)
		goto out;
	if ((r = bfs_crypto_load_key(path, key, err, errlen)) != 0) {
		if (!err[0])
			snprintf(err, errlen, "master key %s: %s", path,
				 bfs_strerror(r));
		goto out;
	}
	*have = 1;
out:
	free(path);
	return r;
}

/* Fails when buckets hold secrets but no master key was loaded. */
static int check_secrets_need_key(struct bfs_store *s, int have_key,
				  const struct bfs_config *cfg, char *err,
				  size_t errlen)
{
	struct bfs_bucket_conf *b = NULL;
	size_t n = 0, i;
	char *path;
	int r;

	if (have_key)
		return 0;
	if ((r = bfs_store_bucket_list(s, NULL, &b, &n)) != 0) {
		snprintf(err, errlen, "cannot read the bucket list: %s",
			 bfs_strerror(r));
		return r;
	}
	for (i = 0; i < n; i++) {
		if (b[i].has_secret || b[i].has_session_token) {
			path = bfs_config_master_key_path(cfg);
			snprintf(err, errlen, "bucket '%s' has a stored secret but "
				 "the master key file %s is missing", b[i].name,
				 path ? path : "(none configured)");
			free(path);
			r = BFS_ERR_CRYPTO;
			break;
		}
	}
	bfs_bucket_conf_array_free(b, n);
	return r;
}

/* Before a background daemon detaches, stderr is the caller's terminal:
 * only warnings and errors go there, so a failure reads as one line. */
static void set_log_level(const struct bfs_config *cfg)
{
	int level = g.debug ? BFS_LOG_DEBUG : cfg->log_level;

	if (g.quiet && level > BFS_LOG_WARN)
		level = BFS_LOG_WARN;
	bfs_log_set_level(level);
}

/*
 * A change another host committed (PostgreSQL's change watcher thread):
 * a file index row: the mount forgets what it cached of it; the catalog
 * (buckets, defaults, assignments): the registry reloads now; the watcher
 * was disconnected (notifications may have been missed): both, for every
 * bucket.
 */
static void on_remote_change(void *arg, enum bfs_store_change what,
			     const char *bucket, const char *key)
{
	(void)arg;
	if (what != BFS_CHANGE_FILE)
		bfs_registry_wake(g.reg);
	if (what != BFS_CHANGE_CATALOG)
		bfs_vfs_forget(g.vfs, bucket, key);
}

/* SIGHUP, run on the registry thread: reload the config file. */
static void reload_config(void *arg)
{
	unsigned char key[BFS_MASTER_KEY_LEN];
	struct bfs_config *nc = NULL;
	char err[1024];
	int have_key = 0;

	(void)arg;
	err[0] = '\0';
	BFS_INFO("SIGHUP: reloading %s", g.cfg->file);
	if (bfs_config_load(g.cfg->file, &nc, err, sizeof(err)) != 0) {
		BFS_ERROR("new config refused, the old one keeps serving: %s", err);
		goto out;
	}
	if (load_master_key(nc, key, &have_key, err, sizeof(err)) != 0) {
		BFS_ERROR("new config refused, the old one keeps serving: %s", err);
		goto out;
	}
	if (bfs_store_sync_config(g.store, nc, have_key ? key : NULL, err,
				  sizeof(err)) != 0) {
		BFS_ERROR("new config refused, the old one keeps serving: %s", err);
		goto out;
	}
	set_log_level(nc);
	bfs_vfs_reconfigure(g.vfs, nc);
	if (have_key)
		bfs_registry_set_key(g.reg, key);
	if (bfs_registry_reload(g.reg, err, sizeof(err)) != 0)
		BFS_ERROR("reload: %s", err);
	if (strcmp(nc->cache_dir, g.cfg->cache_dir) != 0)
		BFS_WARN("cache_dir changes take effect at the next mount");
	bfs_config_free(g.cfg);
	g.cfg = nc;
	nc = NULL;
	BFS_INFO("configuration reloaded");
out:
	OPENSSL_cleanse(key, sizeof(key));
	bfs_config_free(nc);
}

static void on_sighup(int sig)
{
	(void)sig;
	bfs_registry_request_hook(g.reg);
}


int main(int argc, char **argv)
{
	struct bfs_mount_opts o;
	struct bfs_mount *mnt = NULL;
	struct sigaction sa;
	unsigned char key[BFS_MASTER_KEY_LEN];
	struct bfs_provider_globals pg;
	char err[1024];
	int have_key = 0, started = 0, ret = 1, r;

	memset(&g, 0, sizeof(g));
	err[0] = '\0';
	if (bfs_mount_parse(argc, argv, &o, &mnt) != 0) {
		usage(stderr);
		ret = 2;
		goto out;
	}
	if (o.help) {
		usage(stdout);
		ret = 0;
		goto out;
	}
	if (o.version) {
		printf("bucketfs %s (libfuse %d)\n", BFS_VERSION,
		       bfs_fuse_version());
		ret = 0;
		goto out;
	}
	if (!o.config || !o.mountpoint) {
		fprintf(stderr, "bucketfs: CONFIG and MOUNTPOINT are required\n");
		usage(stderr);
		ret = 2;
		goto out;
	}
	g.debug = o.debug;
	g.quiet = !o.foreground;
	/* fuse_daemonize() changes to "/" even in the foreground, and the
	 * unmount at exit must still find the mount point. */
	{
		char *abs = realpath(o.mountpoint, NULL);

		if (!abs) {
			fprintf(stderr, "bucketfs: mount point %s: %s\n",
				o.mountpoint, strerror(errno));
			goto out;
		}
		free(o.mountpoint);
		o.mountpoint = abs;
	}

	if (bfs_config_load(o.config, &g.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err);
		goto out;
	}
	set_log_level(g.cfg);
	memset(&pg, 0, sizeof(pg));
	pg.ca_bundle = g.cfg->ca_bundle;
	bfs_provider_set_globals(&pg);

	if (bfs_store_open_config(g.cfg, &g.store, err, sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: database %s: %s\n", g.cfg->database,
			err[0] ? err : "cannot open");
		goto out;
	}
	if (load_master_key(g.cfg, key, &have_key, err, sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err);
		goto out;
	}
	if (bfs_store_sync_config(g.store, g.cfg, have_key ? key : NULL, err,
				  sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err[0] ? err : "config sync failed");
		goto out;
	}
	if (check_secrets_need_key(g.store, have_key, g.cfg, err,
				   sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err);
		goto out;
	}
	/* before the registry opens (and wraps) the providers */
	bfs_cache_set_enabled(!g.cfg->cache_off);
	if ((r = bfs_registry_new(g.store, have_key ? key : NULL, o.bucket,
				  &g.reg, err, sizeof(err))) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err[0] ? err : bfs_strerror(r));
		goto out;
	}
	if (bfs_vfs_new(g.cfg, g.reg, &g.vfs, err, sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err);
		goto out;
	}
	if (bfs_mount_start(mnt, g.vfs, o.mountpoint, err, sizeof(err)) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err);
		goto out;
	}
	/* An SQLite connection must not cross fork(): the child would hold
	 * none of the parent's POSIX locks, and the next bucketctl would then
	 * think itself alone and delete the WAL under the daemon.  Close it
	 * here and open a fresh one in the child. */
	if (!o.foreground) {
		bfs_registry_set_store(g.reg, NULL);
		bfs_store_close(g.store);
		g.store = NULL;
	}
	if (bfs_mount_daemonize(mnt, o.foreground) != 0) {
		fprintf(stderr, "bucketfs: cannot daemonize\n");
		goto out;
	}
	if (!o.foreground) {
		bfs_log_set_syslog(1);
		g.quiet = 0;
		set_log_level(g.cfg);
		if (bfs_store_open_config(g.cfg, &g.store, err,
				   sizeof(err)) != 0) {
			BFS_ERROR("database %s: %s", g.cfg->database, err);
			goto out;
		}
		bfs_registry_set_store(g.reg, g.store);
	}
	if (bfs_mount_signals(mnt) != 0) {
		BFS_ERROR("cannot install signal handlers");
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	if ((r = bfs_registry_start(g.reg, reload_config, NULL)) != 0) {
		BFS_ERROR("cannot start the registry thread: %s", bfs_strerror(r));
		goto out;
	}
	if ((r = bfs_store_watch(g.store, on_remote_change, NULL)) != 0) {
		BFS_ERROR("cannot start the change watcher: %s", bfs_strerror(r));
		goto out;
	}
	/* Adopts what the upload journal holds from a crash (local work
	 * only) before the loop serves anything; the uploads themselves run
	 * on the queue's worker. */
	if ((r = bfs_vfs_start(g.vfs)) != 0) {
		BFS_ERROR("cannot start the upload queue: %s", bfs_strerror(r));
		goto out;
	}
	started = 1;
	/* the I/O pool's threads start now, not under the first file lock
	 * that submits a part */
	if (!bfs_pool_io())
		BFS_WARN("cannot start the I/O pool yet; it is tried again on use");
	BFS_INFO("mounted %s on %s%s%s", g.cfg->file, o.mountpoint,
		 o.bucket ? " bucket=" : "", o.bucket ? o.bucket : "");
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	r = bfs_mount_loop(mnt);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	BFS_INFO("unmounting; flushing pending uploads");
	/* SIGTERM/SIGINT are an ordinary stop, like fusermount3 -u. */
	ret = (r == 0 || r == SIGTERM || r == SIGINT) ? 0 : 1;
	started = 0;
	if (bfs_vfs_shutdown(g.vfs) != 0) {
		BFS_ERROR("some uploads stay journaled for the next start "
			  "(bucketctl pending)");
		ret = 1;
	}
out:
	if (started)
		bfs_vfs_shutdown(g.vfs);
	/* uploads are done (or journaled): drain the part jobs still queued
	 * while the store and the buckets they use are alive */
	bfs_pool_io_shutdown();
	if (g.reg)
		bfs_registry_stop(g.reg);
	if (g.store)
		bfs_store_watch(g.store, NULL, NULL);
	bfs_mount_free(mnt);
	bfs_vfs_free(g.vfs);
	bfs_registry_free(g.reg);
	bfs_store_close(g.store);
	bfs_config_free(g.cfg);
	OPENSSL_cleanse(key, sizeof(key));
	bfs_mount_opts_free(&o);
	return ret;
}
