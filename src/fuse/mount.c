/*
 * mount.c - what the daemon does with libfuse (bfs_mount.h): the command
 * line (fuse_opt_parse: our positionals and options, libfuse's passed
 * through), the forced mount options, fuse_new + fuse_mount,
 * fuse_daemonize, libfuse's signal handlers and the multi-threaded loop,
 * and the unmount.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "bfs_mount.h"

struct bfs_mount {
	struct fuse_args args;
	struct fuse *fuse;
	int mounted;
	int handlers;
};

enum { KEY_HELP, KEY_VERSION, KEY_FG, KEY_DEBUG };

static const struct fuse_opt mount_optspec[] = {
	{ "bucket=%s", offsetof(struct bfs_mount_opts, bucket), 0 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_END
};

static int mount_opt_proc(void *data, const char *arg, int key,
			  struct fuse_args *outargs)
{
	struct bfs_mount_opts *o = data;

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
		fprintf(stderr, "bucketfs: unexpected argument '%s'\n", arg);
		return -1;
	default:
		return 1;            /* a FUSE option: pass it through */
	}
}

int bfs_mount_parse(int argc, char **argv, struct bfs_mount_opts *o,
		    struct bfs_mount **out)
{
	struct bfs_mount *m;
	int r = -1;

	*out = NULL;
	memset(o, 0, sizeof(*o));
	if (!(m = calloc(1, sizeof(*m)))) {
		fprintf(stderr, "bucketfs: out of memory\n");
		goto out;
	}
	m->args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&m->args, o, mount_optspec, mount_opt_proc) != 0)
		goto out;
	*out = m;
	m = NULL;
	r = 0;
out:
	bfs_mount_free(m);
	return r;
}

void bfs_mount_opts_free(struct bfs_mount_opts *o)
{
	free(o->bucket);
	free(o->config);
	free(o->mountpoint);
	memset(o, 0, sizeof(*o));
}

int bfs_mount_start(struct bfs_mount *m, struct bfs_vfs *v,
		    const char *mountpoint, char *err, size_t errlen)
{
	/* The kernel checks every access against the modes and owners
	 * (INTERFACE.md "Who may do what"), whatever options the caller
	 * gave: with allow_other and without it, every user could read and
	 * write everything, the control files included. */
	if (fuse_opt_add_arg(&m->args, "-osubtype=bucketfs") != 0 ||
	    fuse_opt_add_arg(&m->args, "-ofsname=bucketfs") != 0 ||
	    fuse_opt_add_arg(&m->args, "-odefault_permissions") != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->fuse = fuse_new(&m->args, bfs_fuse_operations(),
			   sizeof(struct fuse_operations), v);
	if (!m->fuse) {
		snprintf(err, errlen, "bad FUSE options");
		return -1;
	}
	if (fuse_mount(m->fuse, mountpoint) != 0) {
		snprintf(err, errlen, "cannot mount on %s", mountpoint);
		return -1;
	}
	m->mounted = 1;
	return 0;
}

int bfs_mount_daemonize(struct bfs_mount *m, int foreground)
{
	(void)m;
	return fuse_daemonize(foreground) != 0 ? -1 : 0;
}

int bfs_mount_signals(struct bfs_mount *m)
{
	if (fuse_set_signal_handlers(fuse_get_session(m->fuse)) != 0)
		return -1;
	m->handlers = 1;
	return 0;
}

int bfs_mount_loop(struct bfs_mount *m)
{
	/* FUSE_USE_VERSION 35: fuse_loop_mt() is fuse_loop_mt_32(), which
	 * takes this public {clone_fd, max_idle_threads} struct.  A struct
	 * from fuse_loop_cfg_create() (the 3.12 API) would be misread there
	 * as max_idle_threads = 1: a new thread for every request. */
	struct fuse_loop_config lc;
	int r;

	memset(&lc, 0, sizeof(lc));
	lc.clone_fd = 1;
	lc.max_idle_threads = 10;
	r = fuse_loop_mt(m->fuse, &lc);
	/* libfuse reports the signal that ended the loop as -signal */
	return r < 0 ? -r : r;
}

void bfs_mount_free(struct bfs_mount *m)
{
	if (!m)
		return;
	if (m->handlers)
		fuse_remove_signal_handlers(fuse_get_session(m->fuse));
	if (m->mounted)
		fuse_unmount(m->fuse);
	if (m->fuse)
		fuse_destroy(m->fuse);
	fuse_opt_free_args(&m->args);
	free(m);
}
