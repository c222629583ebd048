/*
 * bfs_perm.h - owners and modes as the config file and bucketctl take
 * them (INTERFACE.md "Who may do what"): a user or group is a name or a
 * decimal number, a mode is octal ("750", "0750").
 *
 * Names are looked up in the system's user and group databases
 * (getpwnam_r / getgrnam_r, so NSS sources count); numbers are taken as
 * they are, as chown(1) takes them, whether or not a user has them.
 */
#ifndef BFS_PERM_H
#define BFS_PERM_H

#include <stddef.h>
#include <stdint.h>

/* Largest mode a bucket folder or folder takes (sticky bit allowed: the
 * kernel enforces it; setuid/setgid are refused), and a file's. */
#define BFS_PERM_DIR_MODE_MAX 01777u
#define BFS_PERM_FILE_MODE_MAX 0777u

/*
 * User name or number -> uid.  0 on success; BFS_ERR_NOTFOUND for a
 * name the user database does not know, BFS_ERR_INVAL for text that is
 * neither; reason (may be NULL) says why.
 */
int bfs_perm_user(const char *s, uint32_t *uid, char *reason, size_t rlen);
/* The same for groups. */
int bfs_perm_group(const char *s, uint32_t *gid, char *reason, size_t rlen);
/*
 * Octal mode, 1 to 4 digits (a leading 0 is allowed), at most max.
 * 0 or BFS_ERR_INVAL with reason.
 */
int bfs_perm_mode(const char *s, uint32_t max, uint32_t *mode, char *reason,
		  size_t rlen);

/* Who asks: a process's fsuid, fsgid and supplementary groups. */
struct bfs_perm_who {
	uint32_t uid, gid;
	const uint32_t *groups;
	size_t ngroups;
};
#define BFS_PERM_R 4u
#define BFS_PERM_W 2u
/*
 * 1 when who may access a file of mode/fuid/fgid for want (BFS_PERM_R |
 * BFS_PERM_W), by the kernel's own rule (generic_permission): root may,
 * the owner gets the owner bits, a member of the group (primary or
 * supplementary) the group bits, everyone else the other bits.
 */
int bfs_perm_may(uint32_t mode, uint32_t fuid, uint32_t fgid,
		 const struct bfs_perm_who *who, unsigned want);

#endif
