/*
 * main.c - the bucketfs daemon: `bucketfs [-f] [-d] [-o OPT[,OPT]...]
 * CONFIG MOUNTPOINT` (options may also follow the positionals, as
 * mount.fuse3 calls it).
 *
 * Start-up does every check that can fail before the mount exists, so a bad
 * config, an unreachable database or a wrong master key exit 1 with one
 * line on stderr and mount nothing: load config -> open store -> master
 * key -> sync the config's buckets into the store -> build the registry
 * (opens providers) -> cache folder -> fuse_new/fuse_mount ->
 * fuse_daemonize (the parent exits 0 only now that the mount is live).
 * Threads start only after daemonizing.  SIGHUP asks the registry thread to
 * reload the config file (a bad new config is refused and logged; the old
 * one keeps serving).  The upload queue (src/fuse/upload.c) starts last:
 * it adopts the upload journal left by a crash and finishes it in the
 * background.  On SIGTERM or unmount the loop returns and every dirty
 * file is uploaded (bounded by upload_timeout, logged); what cannot be
 * stored stays journaled for the next start.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse.h>
#include <fuse_lowlevel.h>
#include <openssl/crypto.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "bfs_config.h"
#include "bfs_crypto.h"
#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_provider.h"
#include "bfs_route.h"
#include "bfs_store.h"
#include "../fuse/fs_int.h"

#define BFS_VERSION "1.0.0"

enum { KEY_HELP, KEY_VERSION, KEY_FG, KEY_DEBUG };

struct main_opts {
	char *bucket;            /* -o bucket=NAME */
	char *config;
	char *mountpoint;
	int help, version, foreground, debug, extra;
};

static const struct fuse_opt main_optspec[] = {
	{ "bucket=%s", offsetof(struct main_opts, bucket), 0 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_END
};

/* State the SIGHUP reload works on (touched by the registry thread only
 * after start-up). */
static struct {
	struct bfs_config *cfg;
	struct bfs_store *store;
	struct bfs_registry *reg;
	int debug;
	int quiet;               /* not yet detached from the caller's stderr */
} g;

static int main_opt_proc(void *data, const char *arg, int key,
			 struct fuse_args *outargs)
{
	struct main_opts *o = data;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	case KEY_FG:
		o->foreground = 1;
		return 0;
	case KEY_DEBUG:
		o->debug = 1;
		o->foreground = 1;
		return 1;            /* libfuse traces requests too */
	case FUSE_OPT_KEY_NONOPT:
		if (!o->config) {
			o->config = strdup(arg);
			return 0;
		}
		if (!o->mountpoint) {
			o->mountpoint = strdup(arg);
			return 0;
		}
		o->extra = 1;
		fprintf(stderr, "bucketfs: unexpected argument '%s'\n", arg);
		return -1;
	default:
		return 1;            /* a FUSE option: pass it through */
	}
}

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

/* mkdir -p with mode 0700 for the parts it creates. */
static int mkdir_p(const char *path)
{
	char *p = strdup(path), *s;
	int r = 0;

	if (!p)
		return BFS_ERR_NOMEM;
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0700) < 0 && errno != EEXIST) {
				r = bfs_err_from_errno(errno);
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return r;
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

/* The gid owning the writable control files, -1 without admin_group. */
static int64_t admin_gid_of(const struct bfs_config *cfg)
{
	return cfg->admin_group ? (int64_t)cfg->admin_gid : -1;
}

/*
 * A file index change another host committed (PostgreSQL's change
 * watcher thread): drop what this mount cached of it, its attributes,
 * its folder's listing and its data blocks (bfs_attr_drop); bucket NULL:
 * notifications may have been missed, drop every bucket's.
 */
static void on_remote_change(void *arg, const char *bucket, const char *key)
{
	char **names = NULL;
	size_t n = 0, i;

	(void)arg;
	if (bucket) {
		bfs_attr_drop(bucket, key);
		return;
	}
	if (bfs_registry_names(g.reg, &names, &n) != 0)
		return;
	for (i = 0; i < n; i++)
		bfs_attr_drop_bucket(names[i]);
	bfs_registry_names_free(names, n);
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
	atomic_store(&bfs_fs.list_metadata, nc->list_metadata);
	atomic_store(&bfs_fs.presign_expires, nc->presign_expires);
	atomic_store(&bfs_fs.admin_gid, admin_gid_of(nc));
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
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct main_opts o;
	struct fuse *fuse = NULL;
	struct fuse_session *se;
	/* FUSE_USE_VERSION 35: fuse_loop_mt() is fuse_loop_mt_32(), which
	 * takes this public {clone_fd, max_idle_threads} struct.  A struct
	 * from fuse_loop_cfg_create() (the 3.12 API) would be misread there
	 * as max_idle_threads = 1: a new thread for every request. */
	struct fuse_loop_config lc;
	struct sigaction sa;
	unsigned char key[BFS_MASTER_KEY_LEN];
	struct bfs_provider_globals pg;
	char err[1024], *staging = NULL;
	int have_key = 0, mounted = 0, handlers = 0, upq = 0, ret = 1, r;

	memset(&o, 0, sizeof(o));
	memset(&g, 0, sizeof(g));
	err[0] = '\0';
	if (fuse_opt_parse(&args, &o, main_optspec, main_opt_proc) != 0) {
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
		printf("bucketfs %s (libfuse %d)\n", BFS_VERSION, fuse_version());
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
	if ((r = bfs_registry_new(g.store, have_key ? key : NULL, o.bucket,
				  &g.reg, err, sizeof(err))) != 0) {
		fprintf(stderr, "bucketfs: %s\n", err[0] ? err : bfs_strerror(r));
		goto out;
	}

	if (!(staging = malloc(strlen(g.cfg->cache_dir) + 16))) {
		fprintf(stderr, "bucketfs: out of memory\n");
		goto out;
	}
	sprintf(staging, "%s/staging", g.cfg->cache_dir);
	if ((r = mkdir_p(staging)) != 0) {
		fprintf(stderr, "bucketfs: cache folder %s: %s\n", staging,
			bfs_strerror(r));
		goto out;
	}
	bfs_fs.reg = g.reg;
	bfs_fs.staging_dir = staging;
	/* the mounting user: owner of the root, the control files and (by
	 * default) every bucket folder */
	bfs_fs.uid = geteuid();
	bfs_fs.gid = getegid();
	atomic_store(&bfs_fs.admin_gid, admin_gid_of(g.cfg));
	bfs_registry_set_changed_fn(g.reg, bfs_attr_drop_bucket);
	bfs_fs.upload_timeout = g.cfg->upload_timeout;
	atomic_store(&bfs_fs.list_metadata, g.cfg->list_metadata);
	atomic_store(&bfs_fs.presign_expires, g.cfg->presign_expires);
	bfs_mp_set_max_age(g.cfg);
	bfs_fs.cache_size = g.cfg->cache_size;

	/* The kernel checks every access against the modes and owners
	 * (INTERFACE.md "Who may do what"), whatever options the caller
	 * gave: with allow_other and without it, every user could read and
	 * write everything, the control files included. */
	if (fuse_opt_add_arg(&args, "-osubtype=bucketfs") != 0 ||
	    fuse_opt_add_arg(&args, "-ofsname=bucketfs") != 0 ||
	    fuse_opt_add_arg(&args, "-odefault_permissions") != 0) {
		fprintf(stderr, "bucketfs: out of memory\n");
		goto out;
	}
	fuse = fuse_new(&args, bfs_fs_operations(), sizeof(struct fuse_operations),
			NULL);
	if (!fuse) {
		fprintf(stderr, "bucketfs: bad FUSE options\n");
		goto out;
	}
	if (fuse_mount(fuse, o.mountpoint) != 0) {
		fprintf(stderr, "bucketfs: cannot mount on %s\n", o.mountpoint);
		goto out;
	}
	mounted = 1;
	/* An SQLite connection must not cross fork(): the child would hold
	 * none of the parent's POSIX locks, and the next bucketctl would then
	 * think itself alone and delete the WAL under the daemon.  Close it
	 * here and open a fresh one in the child. */
	if (!o.foreground) {
		bfs_registry_set_store(g.reg, NULL);
		bfs_store_close(g.store);
		g.store = NULL;
	}
	if (fuse_daemonize(o.foreground) != 0) {
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
	se = fuse_get_session(fuse);
	if (fuse_set_signal_handlers(se) != 0) {
		BFS_ERROR("cannot install signal handlers");
		goto out;
	}
	handlers = 1;
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
	if ((r = bfs_upq_start()) != 0) {
		BFS_ERROR("cannot start the upload queue: %s", bfs_strerror(r));
		goto out;
	}
	upq = 1;
	BFS_INFO("mounted %s on %s%s%s", g.cfg->file, o.mountpoint,
		 o.bucket ? " bucket=" : "", o.bucket ? o.bucket : "");
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	memset(&lc, 0, sizeof(lc));
	lc.clone_fd = 1;
	lc.max_idle_threads = 10;
	r = fuse_loop_mt(fuse, &lc);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	BFS_INFO("unmounting; flushing pending uploads");
	/* libfuse reports the signal that ended the loop; SIGTERM/SIGINT
	 * are an ordinary stop, like fusermount3 -u. */
	if (r < 0)
		r = -r;
	ret = (r == 0 || r == SIGTERM || r == SIGINT) ? 0 : 1;
	if (bfs_upq_shutdown(bfs_fs.upload_timeout) != 0) {
		BFS_ERROR("some uploads stay journaled for the next start "
			  "(bucketctl pending)");
		ret = 1;
	}
	upq = 0;
	bfs_fs_release_all();
out:
	if (upq)
		bfs_upq_shutdown(bfs_fs.upload_timeout);
	if (g.reg)
		bfs_registry_stop(g.reg);
	if (g.store)
		bfs_store_watch(g.store, NULL, NULL);
	if (handlers)
		fuse_remove_signal_handlers(fuse_get_session(fuse));
	if (mounted)
		fuse_unmount(fuse);
	if (fuse)
		fuse_destroy(fuse);
	bfs_attr_destroy();
	bfs_xattr_destroy();
	bfs_registry_free(g.reg);
	bfs_store_close(g.store);
	bfs_config_free(g.cfg);
	OPENSSL_cleanse(key, sizeof(key));
	free(staging);
	free(o.bucket);
	free(o.config);
	free(o.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
