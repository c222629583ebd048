/*
 * log.c - one line per event, to stderr (foreground) or syslog (daemon).
 * The level is an atomic so any thread may read it without a lock.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "bfs_log.h"

static atomic_int log_level = BFS_LOG_INFO;
static atomic_int log_syslog;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int bfs_log_level_parse(const char *s)
{
	int i;

	for (i = 0; i < 4; i++)
		if (s && strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void bfs_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int bfs_log_get_level(void)
{
	return atomic_load(&log_level);
}

void bfs_log_set_syslog(int use_syslog)
{
	if (use_syslog && !atomic_load(&log_syslog))
		openlog("bucketfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_syslog, use_syslog);
}

void bfs_log(int level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	va_list ap;

	if (level > atomic_load(&log_level) || level < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One event, one line: fold embedded newlines. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (atomic_load(&log_syslog)) {
		syslog(prio[level], "%s: %s", level_names[level], line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ bucketfs %s: %s\n", when,
			ts.tv_nsec / 1000000, level_names[level], line);
	}
}
