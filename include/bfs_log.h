/*
 * bfs_log.h - one-line log events.
 *
 * Foreground: stderr; daemonized: syslog (journal).  Never pass a secret.
 * Thread-safe.
 */
#ifndef BFS_LOG_H
#define BFS_LOG_H

enum bfs_log_level { BFS_LOG_ERROR = 0, BFS_LOG_WARN, BFS_LOG_INFO, BFS_LOG_DEBUG };

/* Parse "error"|"warn"|"info"|"debug"; returns the level or -1. */
int bfs_log_level_parse(const char *s);
void bfs_log_set_level(int level);
int bfs_log_get_level(void);
/* use_syslog != 0: send to syslog with ident "bucketfs" instead of stderr. */
void bfs_log_set_syslog(int use_syslog);

void bfs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define BFS_ERROR(...) bfs_log(BFS_LOG_ERROR, __VA_ARGS__)
#define BFS_WARN(...)  bfs_log(BFS_LOG_WARN, __VA_ARGS__)
#define BFS_INFO(...)  bfs_log(BFS_LOG_INFO, __VA_ARGS__)
#define BFS_DEBUG(...) do { if (bfs_log_get_level() >= BFS_LOG_DEBUG) \
	bfs_log(BFS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
