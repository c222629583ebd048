/*
 * perm.c - user, group and mode values of the config file and bucketctl
 * (bfs_perm.h).  Lookups use the reentrant getpwnam_r / getgrnam_r with a
 * buffer grown on ERANGE (capped), because the daemon resolves bucket
 * owners on its registry thread while FUSE threads run.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfs_error.h"
#include "bfs_perm.h"

#define PERM_BUF_MAX (1024 * 1024)   /* one passwd/group entry */
#define PERM_NAME_MAX 256

static void set_reason(char *reason, size_t rlen, const char *fmt,
		       const char *s) __attribute__((format(printf, 3, 0)));

static void set_reason(char *reason, size_t rlen, const char *fmt,
		       const char *s)
{
	if (reason && rlen)
		snprintf(reason, rlen, fmt, s);
}

/* 1 and *out when s is a decimal number below (uid_t)-1. */
static int perm_number(const char *s, uint32_t *out)
{
	unsigned long long v = 0;
	size_t i;

	if (!s[0] || strlen(s) > 10)
		return 0;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v >= 0xffffffffULL)      /* (uid_t)-1 means "unchanged" */
		return 0;
	*out = (uint32_t)v;
	return 1;
}

/* Names as useradd/groupadd allow them, plus what NSS sources use
 * (dots, '@', '$' at the end for machine accounts). */
static int perm_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > PERM_NAME_MAX || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.' || c == '@' || (c == '$' && i == n - 1)))
			return 0;
	}
	return 1;
}

/* getpwnam_r (group 0) or getgrnam_r (group 1) of name. */
static int perm_lookup(const char *name, int group, uint32_t *id)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	size_t len = 4096;
	char *buf = NULL, *nb;
	int e, r = BFS_ERR_NOMEM;

	for (;;) {
		if (!(nb = realloc(buf, len)))
			goto out;
		buf = nb;
		e = group ? getgrnam_r(name, &gr, buf, len, &grp)
			  : getpwnam_r(name, &pw, buf, len, &pwp);
		if (e != ERANGE)
			break;
		if (len >= PERM_BUF_MAX) {
			r = BFS_ERR_TOOBIG;
			goto out;
		}
		len *= 2;
	}
	if (group ? !grp : !pwp) {
		r = BFS_ERR_NOTFOUND;
		goto out;
	}
	*id = group ? (uint32_t)gr.gr_gid : (uint32_t)pw.pw_uid;
	r = 0;
out:
	free(buf);
	return r;
}

static int perm_id(const char *s, int group, uint32_t *id, char *reason,
		   size_t rlen)
{
	const char *what = group ? "group" : "user";
	int r;

	if (!s || !s[0]) {
		set_reason(reason, rlen, "expected a %s name or number", what);
		return BFS_ERR_INVAL;
	}
	if (perm_number(s, id))
		return 0;
	if (strspn(s, "0123456789") == strlen(s) || !perm_name_ok(s)) {
		set_reason(reason, rlen, "expected a %s name or number", what);
		return BFS_ERR_INVAL;
	}
	r = perm_lookup(s, group, id);
	if (r == BFS_ERR_NOTFOUND) {
		if (reason && rlen)
			snprintf(reason, rlen, "unknown %s '%s'", what, s);
	} else if (r != 0 && reason && rlen) {
		snprintf(reason, rlen, "cannot look up %s '%s': %s", what, s,
			 bfs_strerror(r));
	}
	return r;
}

int bfs_perm_user(const char *s, uint32_t *uid, char *reason, size_t rlen)
{
	return perm_id(s, 0, uid, reason, rlen);
}

int bfs_perm_group(const char *s, uint32_t *gid, char *reason, size_t rlen)
{
	return perm_id(s, 1, gid, reason, rlen);
}

int bfs_perm_mode(const char *s, uint32_t max, uint32_t *mode, char *reason,
		  size_t rlen)
{
	uint32_t v = 0;
	size_t i, n = s ? strlen(s) : 0;
	const char *d = s;

	if (n > 1 && s[0] == '0') {   /* "0750": the usual spelling */
		d++;
		n--;
	}
	if (n < 1 || n > 4)
		goto bad;
	for (i = 0; i < n; i++) {
		if (d[i] < '0' || d[i] > '7')
			goto bad;
		v = v * 8 + (uint32_t)(d[i] - '0');
	}
	if (v > max)
		goto bad;
	*mode = v;
	return 0;
bad:
	if (reason && rlen)
		snprintf(reason, rlen, "expected an octal mode from 0 to %04o%s",
			 (unsigned)max, max & 01000 ? " (no setuid/setgid bits)" :
			 "");
	return BFS_ERR_INVAL;
}

int bfs_perm_may(uint32_t mode, uint32_t fuid, uint32_t fgid,
		 const struct bfs_perm_who *who, unsigned want)
{
	unsigned bits;
	size_t i;

	if (who->uid == 0)            /* CAP_DAC_OVERRIDE, as the kernel */
		return 1;
	if (who->uid == fuid) {
		bits = (mode >> 6) & 7;
	} else {
		bits = mode & 7;
		if (who->gid == fgid)
			bits = (mode >> 3) & 7;
		for (i = 0; i < who->ngroups && who->gid != fgid; i++)
			if (who->groups[i] == fgid) {
				bits = (mode >> 3) & 7;
				break;
			}
	}
	return (bits & want) == want;
}
