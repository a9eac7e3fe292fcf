/*
 * recover.c — import of dead processes' journals (see recover.h).
 */
#include "recover.h"
#include "store.h"
#include "sys.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Slice of one import transaction: other writers get the lock between. */
#define RECOVER_SLICE_NS (50 * 1000000LL)

typedef int (*journal_visit)(void *arg, const char *path, uint64_t id);

/* Call @p visit for every "<base>-journal-<16 hex>" in the trace's directory. */
static int
each_journal(const char *trace_path, journal_visit visit, void *arg)
{
	char *dirbuf = strdup(trace_path), *basebuf = strdup(trace_path);
	const char *dir, *base;
	struct dirent *de;
	size_t blen;
	DIR *d = NULL;
	int rc = 0;

	if (!dirbuf || !basebuf)
		goto out;
	dir = dirname(dirbuf);
	base = basename(basebuf);
	blen = strlen(base);
	d = opendir(dir);
	if (!d)
		goto out;
	while (rc == 0 && (de = readdir(d))) {
		const char *n = de->d_name, *hex;
		char path[4096], *end;
		uint64_t id;

		if (strncmp(n, base, blen) || strncmp(n + blen, JOURNAL_SUFFIX,
						       sizeof(JOURNAL_SUFFIX) - 1))
			continue;
		hex = n + blen + sizeof(JOURNAL_SUFFIX) - 1;
		if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
			continue;
		id = strtoull(hex, &end, 16);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, n) >= sizeof(path))
			continue;
		rc = visit(arg, path, id);
	}
out:
	if (d)
		closedir(d);
	free(dirbuf);
	free(basebuf);
	return rc;
}

struct recover_run {
	struct ingest *in;
	const struct recover_ops *ops;
	uint64_t own_id;
	struct recover_stats *stats;
};

static const char *
left_reason(int err)
{
	switch (err) {
	case -EPROTO:
		return "written by a newer pcsctap";
	case -EPERM:
		return "not a private file of this user";
	case -EBADMSG:
		return "not a pcsctap journal";
	default:
		return strerror(-err);
	}
}

/*
 * Recoverers take turns per journal: the one that holds the journal's
 * flock imports it to the end, slice after slice (or dies, and the kernel
 * drops the lock).  The claim is taken only inside a transaction, so that
 * a holder never waits for SQLite's write lock before its first slice;
 * the others wait for the claim to be free, polled often (SQLite's
 * backing-off busy handler seldom wins the short gap between two slices),
 * and one still refused after CLAIM_WAIT_MS leaves the journal to its
 * holder.  Exactly once does not rest on this (the journals table does):
 * a journal whose claim cannot be opened is imported without one.
 */
enum { CLAIM_WAIT_MS = 5000 };

/* The descriptor to claim @p path by, not locked yet; -ENOENT when it is
 * gone or was replaced (another recoverer was quicker). */
static int
claim_open(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;
	int fd = trace_sys.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (trace_sys.fstat(fd, &st) < 0 || st.st_dev != dev || st.st_ino != ino) {
		trace_sys.close(fd);
		return -ENOENT;
	}
	return fd;
}

/* Wait until nobody holds the claim of @p fd; -EBUSY if somebody still
 * does after CLAIM_WAIT_MS.  Yields through @p ops meanwhile (a writer
 * thread must answer fork() at once). */
static int
claim_wait_free(int fd, const struct recover_ops *ops)
{
	int64_t end = trace_mono_ns() + (int64_t)CLAIM_WAIT_MS * 1000000;

	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return 0;
		if (trace_mono_ns() >= end)
			return -EBUSY;
		if (ops->between)
			ops->between(ops->ctx);
		usleep(1000);
	}
	flock(fd, LOCK_UN);
	return 0;
}

enum import_result { IMPORT_PARTLY, IMPORT_WHOLE, IMPORT_CLAIMED };

/* Import @p j (dead) slice by slice, claimed by @p claim_fd (-1: none). */
static enum import_result
import_one(struct recover_run *run, struct journal *j, int claim_fd, int *sqlrc)
{
	struct ingest *in = run->in;
	const struct journal_header *h = j->hdr;
	struct ingest_mark m;
	uint64_t events;
	char state[128];
	int found, corrupt = 0, held = 0;
	int rc;

	if (h->tail > h->head || h->head - h->tail > j->capacity) {
		corrupt = 1;
		trace_warnf("journal %s: damaged header; not imported", j->path);
		return IMPORT_WHOLE;
	}
	for (;;) {
		if (claim_fd >= 0 && !held && claim_wait_free(claim_fd, run->ops) < 0)
			return IMPORT_CLAIMED;
		rc = run->ops->begin(run->ops->ctx);
		if (rc != SQLITE_OK)
			goto fail;
		if (claim_fd >= 0 && !held) {
			if (flock(claim_fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
				ingest_run(in, IS_ROLLBACK);
				continue;	/* taken meanwhile: wait for it again */
			}
			held = 1;
		}
		in->pid = h->pid;
		rc = ingest_mark_get(in, h->id, &m, &found);
		if (rc != SQLITE_OK)
			goto rollback;
		if (!found || m.imported < h->tail)
			m.imported = h->tail;
		rc = ingest_range(in, j, h->head, h->dropped, trace_mono_ns() + RECOVER_SLICE_NS,
				  0, &m, &events, &corrupt);
		if (rc != SQLITE_OK)
			goto rollback;
		if (corrupt)
			snprintf(state, sizeof(state), "damaged at byte %llu of %llu",
				 (unsigned long long)m.imported, (unsigned long long)h->head);
		else
			snprintf(state, sizeof(state), "%s",
				 m.imported == h->head ? "imported" : "importing");
		rc = ingest_mark_set(in, h->id, &m, state);
		if (rc != SQLITE_OK)
			goto rollback;
		rc = ingest_run(in, IS_COMMIT);
		if (rc != SQLITE_OK)
			goto rollback;
		run->stats->events += events;
		if (corrupt) {
			trace_warnf("journal %s: damaged record after %llu of %llu bytes;"
				    " the rest is not imported (noted in the journals table)",
				    j->path, (unsigned long long)(m.imported - h->tail),
				    (unsigned long long)(h->head - h->tail));
			return IMPORT_WHOLE;
		}
		if (m.imported == h->head)
			return IMPORT_WHOLE;
		if (run->ops->between)
			run->ops->between(run->ops->ctx);
	}
rollback:
	if (in->db && !sqlite3_get_autocommit(in->db))
		ingest_run(in, IS_ROLLBACK);
fail:
	*sqlrc = rc;
	return IMPORT_PARTLY;
}

static int
visit_recover(void *arg, const char *path, uint64_t id)
{
	struct recover_run *run = arg;
	struct journal j;
	dev_t dev;
	ino_t ino;
	int sqlrc = SQLITE_OK;
	int err, claim_fd;

	if (id == run->own_id)
		return 0;
	err = journal_open_existing(&j, path, &dev, &ino);
	if (err == -ENOENT)
		return 0;	/* another recoverer was quicker */
	if (err < 0) {
		run->stats->left++;
		trace_warnf("journal %s: %s; left alone", path, left_reason(err));
		return 0;
	}
	if (journal_owner_alive(j.hdr, dev, ino)) {
		run->stats->live++;
		goto out;
	}
	claim_fd = claim_open(path, dev, ino);
	if (claim_fd == -ENOENT)
		goto out;
	switch (import_one(run, &j, claim_fd, &sqlrc)) {
	case IMPORT_WHOLE:
		run->stats->journals++;
		unlink(path);
		break;
	case IMPORT_CLAIMED:
		run->stats->claimed++;
		break;
	case IMPORT_PARTLY:
		break;
	}
	if (claim_fd >= 0)
		trace_sys.close(claim_fd);
out:
	journal_release(&j, 0);
	return sqlrc;
}

int
recover_journals(struct ingest *in, const struct recover_ops *ops,
		 const char *trace_path, uint64_t own_id, struct recover_stats *stats)
{
	struct recover_run run = { in, ops, own_id, stats };
	int64_t pid = in->pid;
	int rc;

	memset(stats, 0, sizeof(*stats));
	rc = each_journal(trace_path, visit_recover, &run);
	in->pid = pid;
	return rc;
}

struct count_run {
	unsigned journals;
	uint64_t bytes;
};

static int
visit_count(void *arg, const char *path, uint64_t id)
{
	struct count_run *c = arg;
	struct journal j;
	dev_t dev;
	ino_t ino;

	(void)id;
	/* One we may not read counts: nobody can tell it is being written. */
	if (journal_open_existing(&j, path, &dev, &ino) < 0) {
		c->journals++;
		return 0;
	}
	if (!journal_owner_alive(j.hdr, dev, ino)) {
		c->journals++;
		c->bytes += j.hdr->head - j.hdr->tail;
	}
	journal_release(&j, 0);
	return 0;
}

void
recover_pending(const char *trace_path, unsigned *journals, uint64_t *bytes)
{
	struct count_run c = { 0, 0 };

	each_journal(trace_path, visit_count, &c);
	*journals = c.journals;
	*bytes = c.bytes;
}

static int
plain_begin(void *arg)
{
	struct ingest *in = arg;

	return ingest_run(in, IS_BEGIN);
}

int
trace_recover(const char *path)
{
	struct recover_ops ops = { plain_begin, NULL, NULL };
	struct recover_stats st = { 0 };
	struct ingest in = { 0 };
	sqlite3 *db = NULL;
	uint64_t bytes;
	unsigned dead;
	char err[512];
	int ret, rc;

	/* This process's writer imports them itself (and no second
	 * connection to the file may be opened here, store.h). */
	if (trace_writer_in_process(path))
		return 0;
	recover_pending(path, &dead, &bytes);
	if (!dead)
		return 0;
	ret = trace_db_open_rw(path, 5000, &db, err, sizeof(err));
	if (ret < 0) {
		trace_warnf("%u journal%s of ended processes (%llu bytes of events) beside %s"
			    " not imported (%s); open the trace as its owner to import them",
			    dead, dead == 1 ? "" : "s", (unsigned long long)bytes, path, err);
		return ret;
	}
	ops.ctx = &in;
	rc = ingest_prepare(&in, db);
	if (rc == SQLITE_OK)
		rc = recover_journals(&in, &ops, path, 0, &st);
	ret = rc == SQLITE_OK ? (int)(st.events > INT32_MAX ? INT32_MAX : st.events)
			      : trace_err_from_sqlite(rc);
	if (rc != SQLITE_OK)
		trace_warnf("%s: journals not (all) imported: %s", path, sqlite3_errstr(rc));
	ingest_finalize(&in);
	trace_db_close(db, 1);
	return ret;
}
