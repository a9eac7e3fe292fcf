/*
 * proc.c — process identity for the `processes` table.
 */
#include "proc.h"
#include "sys.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static void
read_cmdline(char *buf, size_t len)
{
	ssize_t n = 0;
	int fd;

	buf[0] = '\0';
	fd = trace_sys.open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	trace_sys.close(fd);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	/* NUL-separated arguments, each NUL-terminated: join with spaces. */
	if (buf[n - 1] == '\0')
		n--;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\0')
			buf[i] = ' ';
	}
}

void
trace_procinfo_get(struct trace_procinfo *pi)
{
	ssize_t n;
	char *slash;

	memset(pi, 0, sizeof(*pi));
	pi->pid = getpid();
	pi->ppid = getppid();
	n = readlink("/proc/self/exe", pi->exe, sizeof(pi->exe) - 1);
	pi->exe[n > 0 ? n : 0] = '\0';
	slash = strrchr(pi->exe, '/');
	pi->name = slash ? slash + 1 : pi->exe;
	read_cmdline(pi->argv, sizeof(pi->argv));
	if (gethostname(pi->host, sizeof(pi->host) - 1) < 0)
		pi->host[0] = '\0';
}
