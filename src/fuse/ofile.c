/*
 * ofile.c - the open-file table (s3fs fd-cache idea, one state per file).
 *
 * Every fd of one (bucket, key) shares a struct bfs_ofile, so all of them
 * see the same staged bytes.  Writes go to a staging file under
 * cache_dir/staging (0600); an existing object is downloaded into it the
 * first time it is written or truncated (bfs_ofile_stage_locked).  Once
 * staged, the staging file is the file's content until the last fd closes;
 * reads of a clean, unstaged file go to the provider (see fs.c).
 *
 * Uploads (close, fsync, shutdown) send the staging file with the staged
 * mode/uid/gid/mtime and content type, and only then mark the file clean;
 * a failed upload keeps the data staged and dirty, so a later flush,
 * fsync or release retries, and the staging file is never deleted while
 * dirty (its path is logged instead when the last fd goes).
 *
 * Locking: table_mu guards the hash chains, refs and every (T) field of
 * struct bfs_ofile (those change with both table_mu and ofile.mu held).
 * Lock order: table_mu -> ofile.mu.  An upload holds only ofile.mu, so a
 * slow provider blocks users of that one file, not the table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_store.h"
#include "fs_int.h"

#define OFILE_SLOTS 1024

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_ofile *table[OFILE_SLOTS];            /* table_mu */

static unsigned of_hash(const char *bucket, const char *key)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)bucket; *p; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % OFILE_SLOTS;
}

void bfs_ofile_init(void)
{
}

/* table_mu held. */
static struct bfs_ofile *find_locked(const char *bucket, const char *key)
{
	struct bfs_ofile *of;

	for (of = table[of_hash(bucket, key)]; of; of = of->next)
		if (strcmp(of->b->name, bucket) == 0 && strcmp(of->key, key) == 0)
			return of;
	return NULL;
}

/* table_mu held. */
static void unlink_locked(struct bfs_ofile *of)
{
	struct bfs_ofile **pp;

	if (!of->in_table)
		return;
	for (pp = &table[of_hash(of->b->name, of->key)]; *pp; pp = &(*pp)->next) {
		if (*pp == of) {
			*pp = of->next;
			break;
		}
	}
	of->next = NULL;
	of->in_table = 0;
}

/* table_mu held. */
static void insert_locked(struct bfs_ofile *of)
{
	unsigned h = of_hash(of->b->name, of->key);

	of->next = table[h];
	table[h] = of;
	of->in_table = 1;
}

static void ofile_free(struct bfs_ofile *of)
{
	if (of->fd >= 0)
		close(of->fd);
	if (of->staging_path) {
		if (of->dirty && !of->unlinked) {
			BFS_ERROR("%s/%s: closed with an upload still failing; "
				  "data kept in %s", of->b->name, of->key,
				  of->staging_path);
		} else {
			unlink(of->staging_path);
		}
	}
	if (of->dirty && !of->unlinked)
		bfs_metrics_pending_add(-1);
	free(of->staging_path);
	free(of->key);
	bfs_rbucket_put(of->b);
	pthread_mutex_destroy(&of->mu);
	free(of);
}

int bfs_ofile_get(struct bfs_rbucket *b, const char *key,
		  const struct stat *st, struct bfs_ofile **out, int *created)
{
	struct bfs_ofile *of, *nof = NULL;
	int r = BFS_ERR_NOMEM;

	*out = NULL;
	if (created)
		*created = 0;
	pthread_mutex_lock(&table_mu);
	if ((of = find_locked(b->name, key)) != NULL) {
		of->refs++;
		*out = of;
		r = 0;
		goto out;
	}
	if (!(nof = calloc(1, sizeof(*nof))))
		goto out;
	if (!(nof->key = strdup(key))) {
		free(nof);
		nof = NULL;
		goto out;
	}
	pthread_mutex_init(&nof->mu, NULL);
	nof->fd = -1;
	nof->refs = 1;
	nof->b = b;
	bfs_rbucket_ref(b);
	if (st) {
		nof->exists_remote = 1;
		nof->size = (uint64_t)st->st_size;
		nof->mode = st->st_mode;
		nof->uid = st->st_uid;
		nof->gid = st->st_gid;
		nof->mtime = st->st_mtim;
	} else {
		nof->mode = S_IFREG | 0644;
		nof->uid = bfs_fs.uid;
		nof->gid = bfs_fs.gid;
		clock_gettime(CLOCK_REALTIME, &nof->mtime);
	}
	insert_locked(nof);
	*out = nof;
	if (created)
		*created = 1;
	r = 0;
out:
	pthread_mutex_unlock(&table_mu);
	return r;
}

void bfs_ofile_ref(struct bfs_ofile *of)
{
	pthread_mutex_lock(&table_mu);
	of->refs++;
	pthread_mutex_unlock(&table_mu);
}

struct bfs_ofile *bfs_ofile_find(const char *bucket, const char *key)
{
	struct bfs_ofile *of;

	pthread_mutex_lock(&table_mu);
	if ((of = find_locked(bucket, key)) != NULL)
		of->refs++;
	pthread_mutex_unlock(&table_mu);
	return of;
}

void bfs_ofile_put(struct bfs_ofile *of)
{
	int last;

	if (!of)
		return;
	pthread_mutex_lock(&table_mu);
	last = --of->refs == 0;
	if (last)
		unlink_locked(of);
	pthread_mutex_unlock(&table_mu);
	if (last)
		ofile_free(of);
}

void bfs_ofile_detach(struct bfs_ofile *of)
{
	pthread_mutex_lock(&table_mu);
	pthread_mutex_lock(&of->mu);
	unlink_locked(of);
	if (of->dirty && !of->unlinked)
		bfs_metrics_pending_add(-1);
	of->unlinked = 1;
	pthread_mutex_unlock(&of->mu);
	pthread_mutex_unlock(&table_mu);
}

void bfs_ofile_set_dirty_locked(struct bfs_ofile *of, int dirty)
{
	if (of->unlinked || of->dirty == dirty) {
		of->dirty = dirty;
		return;
	}
	of->dirty = dirty;
	bfs_metrics_pending_add(dirty ? 1 : -1);
}

static int make_staging(struct bfs_ofile *of)
{
	size_t len = strlen(bfs_fs.staging_dir) + 32;
	char *path = NULL;
	int fd, r = BFS_ERR_NOMEM;

	if (!(path = malloc(len)))
		goto out;
	snprintf(path, len, "%s/bfs-XXXXXX", bfs_fs.staging_dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
		r = bfs_err_from_errno(errno);
		BFS_ERROR("cannot create a staging file in %s: %s",
			  bfs_fs.staging_dir, strerror(errno));
		goto out;
	}
	fchmod(fd, 0600);
	of->fd = fd;
	of->staging_path = path;
	path = NULL;
	r = 0;
out:
	free(path);
	return r;
}

int bfs_ofile_stage_locked(struct bfs_ofile *of, int want_empty)
{
	struct bfs_meta m;
	struct stat st;
	int r;

	if (of->staged)
		return 0;
	if (of->fd < 0 && (r = make_staging(of)) != 0)
		return r;
	if (ftruncate(of->fd, 0) < 0)
		return bfs_err_from_errno(errno);
	if (of->exists_remote && !want_empty) {
		if (!of->b->prov)
			return BFS_ERR_IO;
		memset(&m, 0, sizeof(m));
		r = of->b->prov->ops->get_fd(of->b->prov->st, of->key, of->fd, &m);
		bfs_rbucket_note(of->b, r);
		if (r != 0) {
			BFS_WARN("%s/%s: download for writing failed: %s",
				 of->b->name, of->key, bfs_strerror(r));
			if (ftruncate(of->fd, 0) < 0)
				BFS_WARN("staging truncate: %s", strerror(errno));
			return r;
		}
		if (fstat(of->fd, &st) < 0)
			return bfs_err_from_errno(errno);
		of->size = (uint64_t)st.st_size;
	} else {
		of->size = 0;
	}
	of->staged = 1;
	return 0;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int bfs_ofile_upload_locked(struct bfs_ofile *of)
{
	struct bfs_provider *p = of->b->prov;
	struct bfs_file_row row;
	struct bfs_meta m;
	struct timespec t0, t1;
	char etag[96];
	const char *name;
	int r;

	if (!of->dirty || of->unlinked)
		return 0;
	if (!of->staged || of->fd < 0)
		return BFS_ERR_INTERNAL;
	if (!p)
		return BFS_ERR_IO;
	if (of->b->read_only)
		return BFS_ERR_READONLY;
	memset(&m, 0, sizeof(m));
	m.size = of->size;
	m.mode = of->mode;
	m.uid = of->uid;
	m.gid = of->gid;
	m.mtime = of->mtime.tv_sec;
	m.mtime_nsec = of->mtime.tv_nsec;
	m.has_mode = m.has_uid = m.has_gid = m.has_mtime = 1;
	name = strrchr(of->key, '/') ? strrchr(of->key, '/') + 1 : of->key;
	snprintf(m.content_type, sizeof(m.content_type), "%s",
		 bfs_content_type(name));
	etag[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = p->ops->put_fd(p->st, of->key, of->fd, of->size, &m, etag,
			   sizeof(etag));
	bfs_rbucket_note(of->b, r);
	if (r != 0) {
		BFS_ERROR("%s/%s: upload failed: %s", of->b->name, of->key,
			  bfs_strerror(r));
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	bfs_metrics_upload_latency((double)(t1.tv_sec - t0.tv_sec) +
				   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	bfs_ofile_set_dirty_locked(of, 0);
	of->exists_remote = 1;
	bfs_attr_drop(of->b->name, of->key);
	memset(&row, 0, sizeof(row));
	row.bucket = of->b->name;
	row.key = of->key;
	row.size = of->size;
	row.etag = etag;
	row.content_type = m.content_type;
	row.mode = of->mode;
	row.uid = of->uid;
	row.gid = of->gid;
	row.mtime = of->mtime.tv_sec;
	row.created_at = row.updated_at = now_s();
	if ((r = bfs_store_file_put(bfs_registry_store(bfs_fs.reg), &row)) != 0)
		BFS_ERROR("%s/%s: stored, but the index row failed: %s",
			  of->b->name, of->key, bfs_strerror(r));
	BFS_DEBUG("%s/%s: uploaded %llu bytes", of->b->name, of->key,
		  (unsigned long long)of->size);
	return 0;
}

void bfs_ofile_stat_locked(struct bfs_ofile *of, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = of->mode;
	st->st_nlink = 1;
	st->st_uid = of->uid;
	st->st_gid = of->gid;
	st->st_size = (off_t)of->size;
	st->st_blocks = (blkcnt_t)((of->size + 511) / 512);
	st->st_blksize = 4096;
	st->st_mtim = of->mtime;
	st->st_ctim = of->mtime;
	st->st_atim = of->mtime;
}

int bfs_ofile_rekey(const char *sbucket, const char *src,
		    struct bfs_rbucket *db, const char *dst, int prefix,
		    int mark_dirty)
{
	struct bfs_ofile *of, *moved = NULL, *n;
	size_t slen = strlen(src), dlen = strlen(dst), i;
	char *nk;
	int r = 0;

	pthread_mutex_lock(&table_mu);
	/* Unhook every match first, then re-insert under the new keys. */
	for (i = 0; i < OFILE_SLOTS; i++) {
		struct bfs_ofile **pp = &table[i];

		while ((of = *pp) != NULL) {
			if (strcmp(of->b->name, sbucket) == 0 &&
			    (prefix ? strncmp(of->key, src, slen) == 0 :
				      strcmp(of->key, src) == 0)) {
				*pp = of->next;
				of->in_table = 0;
				of->next = moved;
				moved = of;
			} else {
				pp = &of->next;
			}
		}
	}
	for (of = moved; of; of = n) {
		n = of->next;
		pthread_mutex_lock(&of->mu);
		nk = malloc(dlen + strlen(of->key) - slen + 1);
		if (nk) {
			memcpy(nk, dst, dlen);
			strcpy(nk + dlen, of->key + slen);
			free(of->key);
			of->key = nk;
			if (of->b != db) {
				bfs_rbucket_ref(db);
				bfs_rbucket_put(of->b);
				of->b = db;
			}
		} else {
			r = BFS_ERR_NOMEM;
		}
		if (mark_dirty && of->staged && !of->unlinked)
			bfs_ofile_set_dirty_locked(of, 1);
		pthread_mutex_unlock(&of->mu);
		/* A file already open under the new name is replaced. */
		{
			struct bfs_ofile *old = find_locked(of->b->name, of->key);

			if (old) {
				unlink_locked(old);
				pthread_mutex_lock(&old->mu);
				if (old->dirty && !old->unlinked)
					bfs_metrics_pending_add(-1);
				old->unlinked = 1;
				pthread_mutex_unlock(&old->mu);
			}
		}
		insert_locked(of);
	}
	pthread_mutex_unlock(&table_mu);
	return r;
}

int bfs_ofile_each(const char *bucket, const char *prefix, bfs_ofile_fn fn,
		   void *arg)
{
	struct bfs_ofile **v = NULL, *of;
	size_t n = 0, cap = 0, i, plen = strlen(prefix);
	int r = 0;

	pthread_mutex_lock(&table_mu);
	for (i = 0; i < OFILE_SLOTS; i++) {
		for (of = table[i]; of; of = of->next) {
			if (bucket && strcmp(of->b->name, bucket) != 0)
				continue;
			if (strncmp(of->key, prefix, plen) != 0)
				continue;
			if (n == cap) {
				struct bfs_ofile **nv;

				cap = cap ? cap * 2 : 16;
				if (!(nv = realloc(v, cap * sizeof(*v)))) {
					r = BFS_ERR_NOMEM;
					pthread_mutex_unlock(&table_mu);
					goto out;
				}
				v = nv;
			}
			of->refs++;
			v[n++] = of;
		}
	}
	pthread_mutex_unlock(&table_mu);
	for (i = 0; i < n; i++)
		if (r == 0 && fn(arg, v[i]) != 0)
			r = 1;
out:
	for (i = 0; i < n; i++)
		bfs_ofile_put(v[i]);
	free(v);
	return r;
}

struct flush_all {
	time_t deadline;
	int failed;
	int timed_out;
};

static int flush_one(void *arg, struct bfs_ofile *of)
{
	struct flush_all *fa = arg;
	int r;

	if (time(NULL) > fa->deadline) {
		fa->timed_out = 1;
		return 1;
	}
	pthread_mutex_lock(&of->mu);
	if (of->dirty && !of->unlinked) {
		BFS_INFO("%s/%s: uploading before exit", of->b->name, of->key);
		if ((r = bfs_ofile_upload_locked(of)) != 0)
			fa->failed++;
	}
	pthread_mutex_unlock(&of->mu);
	return 0;
}

int bfs_ofile_flush_all(int timeout)
{
	struct flush_all fa;

	fa.deadline = time(NULL) + (timeout > 0 ? timeout : 60);
	fa.failed = 0;
	fa.timed_out = 0;
	bfs_ofile_each(NULL, "", flush_one, &fa);
	if (fa.timed_out)
		BFS_ERROR("gave up flushing pending uploads after %d s", timeout);
	if (fa.failed)
		BFS_ERROR("%d pending upload(s) failed at exit", fa.failed);
	return fa.failed || fa.timed_out ? BFS_ERR_IO : 0;
}
