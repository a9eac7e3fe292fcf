#include "bed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *
bed_unavailable(void)
{
	if (geteuid() != 0)
		return "end-to-end tests need root (private mount namespace)";
	if (!getenv("BED_STACK") || !getenv("PCSCTAP"))
		return "BED_STACK and PCSCTAP are not set (run through meson test)";
	if (access("/usr/sbin/pcscd", X_OK) != 0)
		return "pcscd is not installed";
	return NULL;
}

/* Run argv and wait; @retval its exit status, or -1. */
static int
run(char *const *argv)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Read DIR/env: KEY=VALUE lines, VALUE possibly in single quotes. */
static int
read_env(struct bed *bed)
{
	char path[320], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", bed->dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *value;
		size_t n;

		if (!eq)
			continue;
		*eq = '\0';
		value = eq + 1;
		n = strcspn(value, "\n");
		value[n] = '\0';
		if (value[0] == '\'' && n >= 2 && value[n - 1] == '\'') {
			value[n - 1] = '\0';
			value++;
		}
		if (!strcmp(line, "PCSCLITE_CSOCK_NAME"))
			setenv("PCSCLITE_CSOCK_NAME", value, 1);
		else if (!strcmp(line, "BED_READER"))
			snprintf(bed->reader, sizeof(bed->reader), "%s", value);
		else if (!strcmp(line, "BED_CARD_LOG"))
			snprintf(bed->card_log, sizeof(bed->card_log), "%s", value);
		else if (!strcmp(line, "BED_PORT"))
			bed->port = atoi(value);
		setenv(line, value, 1);
	}
	fclose(f);
	return bed->reader[0] && bed->card_log[0] ? 0 : -1;
}

int
bed_start(struct bed *bed, const char *const *options)
{
	char *argv[32];
	char stackdir[300], owner[32];
	size_t n = 0;

	memset(bed, 0, sizeof(*bed));
	snprintf(bed->dir, sizeof(bed->dir), "/tmp/pcsctap-bed.XXXXXX");
	if (!mkdtemp(bed->dir)) {
		perror("bed: mkdtemp");
		return -1;
	}
	snprintf(stackdir, sizeof(stackdir), "%s/stack", bed->dir);
	snprintf(owner, sizeof(owner), "%d", (int)getpid());
	argv[n++] = getenv("BED_STACK");
	argv[n++] = "start";
	argv[n++] = stackdir;
	argv[n++] = "--owner";
	argv[n++] = owner;
	for (; options && *options && n < 30; options++)
		argv[n++] = (char *)*options;
	argv[n] = NULL;
	if (run(argv) != 0) {
		fprintf(stderr, "bed: could not start the test stack\n");
		bed_stop(bed);
		return -1;
	}
	/* From here on, DIR names the stack directory holding env and logs. */
	memcpy(bed->dir + strlen(bed->dir), "/stack", 7);
	if (read_env(bed) < 0) {
		fprintf(stderr, "bed: %s/env is incomplete\n", bed->dir);
		bed_stop(bed);
		return -1;
	}
	return 0;
}

void
bed_stop(struct bed *bed)
{
	char top[256], *slash;
	char *argv[] = { getenv("BED_STACK"), "stop", bed->dir, NULL };
	char *rm[] = { "/bin/rm", "-rf", top, NULL };

	if (!bed->dir[0] || !argv[0])
		return;
	run(argv);
	snprintf(top, sizeof(top), "%s", bed->dir);
	slash = strstr(top, "/stack");
	if (slash)
		*slash = '\0';
	if (getenv("BED_KEEP"))
		fprintf(stderr, "bed: kept %s\n", top);
	else
		run(rm);
	bed->dir[0] = '\0';
}

/* Call @p fn on each log line after @p mark until it returns false. */
static void
each_line(const struct bed *bed, size_t mark, bool (*fn)(char **fields, void *data), void *data)
{
	FILE *f = fopen(bed->card_log, "re");
	char line[140000];
	size_t n = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *fields[5] = { NULL }, *p = line;

		if (n++ < mark)
			continue;
		line[strcspn(line, "\n")] = '\0';
		for (int i = 0; i < 5; i++) {
			fields[i] = strsep(&p, "\t");
			if (!fields[i])
				fields[i] = "";
		}
		if (!fn(fields, data))
			break;
	}
	fclose(f);
}

static bool
count_line(char **fields, void *data)
{
	(*(size_t *)data)++;
	return true;
}

size_t
bed_mark(const struct bed *bed)
{
	size_t n = 0;

	each_line(bed, 0, count_line, &n);
	return n;
}

struct kinds {
	bool skip_polls;
	char *buf;
	size_t len;
	size_t pos;
};

static bool
append_kind(char **fields, void *data)
{
	struct kinds *k = data;
	int n;

	if (k->skip_polls && !strcmp(fields[1], "GET_ATR"))
		return true;
	n = snprintf(k->buf + k->pos, k->len - k->pos, "%s%s", k->pos ? " " : "", fields[1]);
	if (n < 0 || (size_t)n >= k->len - k->pos)
		return false;
	k->pos += (size_t)n;
	return true;
}

char *
bed_kinds(const struct bed *bed, size_t mark, bool skip_polls, char *buf, size_t len)
{
	struct kinds k = { .skip_polls = skip_polls, .buf = buf, .len = len };

	buf[0] = '\0';
	each_line(bed, mark, append_kind, &k);
	return buf;
}

struct find {
	const char *kind;
	int nth;
	int field;
	char *buf;
	size_t len;
	bool found;
};

static bool
find_line(char **fields, void *data)
{
	struct find *f = data;

	if (strcmp(fields[1], f->kind) || f->nth-- > 0)
		return true;
	snprintf(f->buf, f->len, "%s", fields[f->field]);
	f->found = true;
	return false;
}

bool
bed_field(const struct bed *bed, const char *kind, size_t mark, int nth, int field,
	  char *buf, size_t len)
{
	struct find f = { .kind = kind, .nth = nth, .field = field, .buf = buf, .len = len };

	if (field < 0 || field > 4 || !len)
		return false;
	buf[0] = '\0';
	each_line(bed, mark, find_line, &f);
	return f.found;
}

bool
bed_wait_kind(const struct bed *bed, const char *kind, size_t mark, int timeout_ms)
{
	char buf[8];

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		struct timespec pause = { 0, 20 * 1000 * 1000 };

		if (bed_field(bed, kind, mark, 0, 1, buf, sizeof(buf)))
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}
