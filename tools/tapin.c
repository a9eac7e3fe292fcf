#include "tapin.h"
#include "commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tap_proc {
	int64_t pid;
	char *name;
	char *role;
};

struct tap_file {
	const char *path;
	struct trace_reader *r;
	struct tap_proc *procs;
	size_t n_procs;
};

struct tap_input {
	struct tap_file files[TAP_MAX_FILES];
	int n;
};

/* Map an open or read error onto the documented exit statuses. */
static int
exit_status(int rc)
{
	switch (rc) {
	case TRACE_E_NOT_SQLITE:
	case TRACE_E_FOREIGN:
	case TRACE_E_CORRUPT:
		return PCSCTAP_EXIT_NOT_TRACE;
	case TRACE_E_NEWER_SCHEMA:
		return PCSCTAP_EXIT_NEWER_SCHEMA;
	case -ENOMEM:
		return PCSCTAP_EXIT_RUNTIME;
	default:
		return PCSCTAP_EXIT_INPUT;
	}
}

static const char *
base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

static int
load_processes(struct tap_file *f)
{
	struct trace_iter *it = NULL;
	struct trace_process p;
	size_t cap = 0;
	int rc;

	rc = trace_iter_processes(f->r, &it);
	if (rc < 0)
		goto out;
	while ((rc = trace_iter_process_next(it, &p)) > 0) {
		struct tap_proc *slot;

		if (f->n_procs == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct tap_proc *np = realloc(f->procs, ncap * sizeof(*np));

			if (!np) {
				rc = -ENOMEM;
				goto out;
			}
			f->procs = np;
			cap = ncap;
		}
		slot = &f->procs[f->n_procs];
		slot->pid = p.pid;
		slot->name = strdup(p.exe && *p.exe ? base_name(p.exe) : "?");
		slot->role = p.role ? strdup(p.role) : NULL;
		if (!slot->name) {
			free(slot->role);
			rc = -ENOMEM;
			goto out;
		}
		f->n_procs++;
	}
out:
	if (it)
		trace_iter_end(it);
	return rc;
}

int
tap_input_open(struct tap_input **out, const char *cmd, char **paths, int n)
{
	struct tap_input *in;
	char *env_path[1];
	char err[256];
	int status = PCSCTAP_EXIT_OK;

	*out = NULL;
	if (n == 0) {
		env_path[0] = getenv("PCSCTAP_TRACE");
		if (!env_path[0] || !*env_path[0]) {
			fprintf(stderr, "pcsctap %s: no trace given (name one, or set PCSCTAP_TRACE)\n", cmd);
			return PCSCTAP_EXIT_USAGE;
		}
		paths = env_path;
		n = 1;
	}
	if (n > TAP_MAX_FILES) {
		fprintf(stderr, "pcsctap %s: at most %d traces at once\n", cmd, TAP_MAX_FILES);
		return PCSCTAP_EXIT_USAGE;
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		fprintf(stderr, "pcsctap %s: out of memory\n", cmd);
		return PCSCTAP_EXIT_RUNTIME;
	}
	for (int i = 0; i < n; i++) {
		struct tap_file *f = &in->files[i];
		int rc;

		f->path = paths[i];
		err[0] = '\0';
		rc = trace_reader_open(&f->r, paths[i], err, sizeof(err));
		if (rc < 0) {
			f->r = NULL;
			fprintf(stderr, "pcsctap %s: %s: %s\n", cmd, paths[i],
				err[0] ? err : trace_strerror(rc));
			status = exit_status(rc);
			goto out;
		}
		in->n = i + 1;
		rc = load_processes(f);
		if (rc < 0) {
			status = tap_input_fail(in, cmd, i, rc);
			goto out;
		}
	}
out:
	if (status != PCSCTAP_EXIT_OK) {
		in->n = n;
		tap_input_close(in);
		return status;
	}
	*out = in;
	return PCSCTAP_EXIT_OK;
}

void
tap_input_close(struct tap_input *in)
{
	if (!in)
		return;
	for (int i = 0; i < in->n; i++) {
		struct tap_file *f = &in->files[i];

		for (size_t j = 0; j < f->n_procs; j++) {
			free(f->procs[j].name);
			free(f->procs[j].role);
		}
		free(f->procs);
		if (f->r)
			trace_reader_close(f->r);
	}
	free(in);
}

int
tap_input_count(const struct tap_input *in)
{
	return in->n;
}

struct trace_reader *
tap_input_reader(struct tap_input *in, int file)
{
	return in->files[file].r;
}

const char *
tap_input_path(const struct tap_input *in, int file)
{
	return in->files[file].path;
}

static const struct tap_proc *
find_proc(const struct tap_input *in, int file, int64_t pid)
{
	const struct tap_file *f = &in->files[file];

	/* Few processes per trace: a scan from the end finds reused pids' latest. */
	for (size_t i = f->n_procs; i-- > 0;) {
		if (f->procs[i].pid == pid)
			return &f->procs[i];
	}
	return NULL;
}

const char *
tap_process_name(const struct tap_input *in, int file, int64_t pid)
{
	const struct tap_proc *p = find_proc(in, file, pid);

	return p ? p->name : "?";
}

const char *
tap_process_role(const struct tap_input *in, int file, int64_t pid)
{
	const struct tap_proc *p = find_proc(in, file, pid);

	return p ? p->role : NULL;
}

int
tap_input_fail(struct tap_input *in, const char *cmd, int file, int rc)
{
	const char *msg = NULL;

	if (file >= 0 && file < in->n && in->files[file].r)
		msg = trace_reader_errmsg(in->files[file].r);
	if (!msg || !*msg)
		msg = trace_strerror(rc);
	fprintf(stderr, "pcsctap %s: %s: %s\n", cmd,
		file >= 0 && file < in->n ? in->files[file].path : "?", msg);
	return exit_status(rc);
}

/* ---------------------------------------------------------------------- */

struct tap_source {
	enum tap_kind kind;
	int file;
	struct trace_iter *it;
	bool valid;		/* row holds the next unread row */
	int64_t last_id;
	union {
		struct trace_call_row call;
		struct trace_marker_row marker;
		struct trace_wire_row wire;
	} row;
};

struct tap_stream {
	struct tap_input *in;
	struct tap_select sel;
	struct tap_handles *handles;
	/* --session resolved: which file, process, card, reader and span. */
	bool by_session;
	int s_file;
	int64_t s_pid;
	uint64_t s_card;
	char *s_reader;
	int64_t s_start, s_end;
	int current;		/* source returned last, -1 none */
	size_t n;
	struct tap_source src[3 * TAP_MAX_FILES];
};

static int
kind_index(enum tap_kind k)
{
	return k == TAP_CALL ? 0 : k == TAP_MARKER ? 1 : 2;
}

static int
source_advance(struct tap_source *s)
{
	int rc;

	switch (s->kind) {
	case TAP_CALL:
		rc = trace_iter_call_next(s->it, &s->row.call);
		break;
	case TAP_MARKER:
		rc = trace_iter_marker_next(s->it, &s->row.marker);
		break;
	default:
		rc = trace_iter_wire_next(s->it, &s->row.wire);
		break;
	}
	s->valid = rc > 0;
	return rc;
}

static int64_t
source_time(const struct tap_source *s)
{
	switch (s->kind) {
	case TAP_CALL: return s->row.call.call.t_enter_ns;
	case TAP_MARKER: return s->row.marker.marker.t_ns;
	default: return s->row.wire.wire.t_ns;
	}
}

static int64_t
source_id(const struct tap_source *s)
{
	switch (s->kind) {
	case TAP_CALL: return s->row.call.id;
	case TAP_MARKER: return s->row.marker.id;
	default: return s->row.wire.id;
	}
}

static int
resolve_session(struct tap_stream *s)
{
	for (int i = 0; i < s->in->n; i++) {
		struct trace_filter f = { .session = s->sel.session };
		struct trace_iter *it = NULL;
		struct trace_session row;
		int rc;

		rc = trace_iter_sessions(s->in->files[i].r, &f, &it);
		if (rc < 0)
			return rc;
		/* The reader filters; check the id anyway in case it did not. */
		while ((rc = trace_iter_session_next(it, &row)) > 0) {
			if (row.id == s->sel.session)
				break;
		}
		if (rc > 0) {
			s->by_session = true;
			s->s_file = i;
			s->s_pid = row.pid;
			s->s_card = row.card;
			s->s_start = row.start_ns;
			s->s_end = row.end_ns;
			s->s_reader = row.reader ? strdup(row.reader) : NULL;
		}
		if (it)
			trace_iter_end(it);
		if (rc < 0)
			return rc;
		if (s->by_session)
			return 0;
	}
	return -ENOENT;
}

int
tap_stream_open(struct tap_stream **out, struct tap_input *in,
		const struct tap_select *sel, const int64_t *after)
{
	struct tap_stream *s;
	int rc = 0;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->in = in;
	s->sel = *sel;
	s->current = -1;
	if (!s->sel.kinds)
		s->sel.kinds = TAP_ALL;
	/* Only calls have a function. */
	if (s->sel.fn)
		s->sel.kinds &= TAP_CALL;
	s->handles = tap_handles_new();
	if (!s->handles) {
		rc = -ENOMEM;
		goto out;
	}
	if (s->sel.session) {
		rc = resolve_session(s);
		if (rc < 0)
			goto out;
	}
	for (int i = 0; i < in->n; i++) {
		for (int k = 0; k < 3; k++) {
			enum tap_kind kind = (enum tap_kind)(1u << k);
			struct tap_source *src = &s->src[s->n];
			struct trace_filter f = { 0 };

			if (!(s->sel.kinds & kind))
				continue;
			/*
			 * Hand the reader only what narrows a time-ordered scan
			 * for certain (pid, span); reader and session need the
			 * handle map, so they are applied here.
			 */
			f.pid = s->sel.pid;
			f.fn = kind == TAP_CALL ? s->sel.fn : 0;
			f.since_ns = s->sel.since_ns;
			f.until_ns = s->sel.until_ns;
			if (s->by_session) {
				if (kind != TAP_WIRE && i != s->s_file)
					continue;
				if (kind != TAP_WIRE)
					f.pid = s->s_pid;
				if (s->s_start > f.since_ns)
					f.since_ns = s->s_start;
				if (s->s_end && (!f.until_ns || s->s_end < f.until_ns))
					f.until_ns = s->s_end;
			}
			if (after)
				f.after_id = after[i * 3 + k];
			src->kind = kind;
			src->file = i;
			src->last_id = after ? after[i * 3 + k] : 0;
			switch (kind) {
			case TAP_CALL:
				rc = trace_iter_calls(in->files[i].r, &f, &src->it);
				break;
			case TAP_MARKER:
				rc = trace_iter_markers(in->files[i].r, &f, &src->it);
				break;
			default:
				rc = trace_iter_wire(in->files[i].r, &f, &src->it);
				break;
			}
			if (rc < 0)
				goto out;
			s->n++;
			rc = source_advance(src);
			if (rc < 0)
				goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0) {
		tap_stream_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

static bool
contains(const struct trace_blob *b, const uint8_t *needle, size_t len)
{
	return b->data && b->len >= len && memmem(b->data, b->len, needle, len);
}

/* The filters the reader was not trusted with; fills ev->reader. */
static bool
keep(struct tap_stream *s, struct tap_event *ev)
{
	const struct tap_select *sel = &s->sel;

	if (sel->pid && ev->pid != sel->pid && !(s->by_session && ev->kind == TAP_WIRE))
		return false;
	if (sel->since_ns && ev->t_ns < sel->since_ns)
		return false;
	if (sel->until_ns && ev->t_ns > sel->until_ns)
		return false;
	switch (ev->kind) {
	case TAP_CALL: {
		const struct trace_call *c = &ev->call->call;

		ev->reader = tap_handles_feed(s->handles, ev->file, ev->call);
		if (sel->fn && c->fn != sel->fn)
			return false;
		if (s->by_session) {
			if (ev->file != s->s_file || ev->pid != s->s_pid ||
			    !(c->present & TRACE_HAS_CARD) || c->card != s->s_card ||
			    ev->t_ns < s->s_start || (s->s_end && ev->t_ns > s->s_end))
				return false;
		}
		if (sel->grep_len && !contains(&c->in, sel->grep, sel->grep_len) &&
		    !contains(&c->out, sel->grep, sel->grep_len))
			return false;
		break;
	}
	case TAP_MARKER: {
		const struct trace_marker *m = &ev->marker->marker;

		ev->reader = m->reader;
		if (s->by_session && (ev->file != s->s_file || ev->pid != s->s_pid ||
				      m->card != s->s_card))
			return false;
		if (sel->grep_len && !contains(&m->body, sel->grep, sel->grep_len))
			return false;
		break;
	}
	default: {
		const struct trace_wire *w = &ev->wire->wire;

		ev->reader = w->reader;
		if (s->by_session && s->s_reader && (!w->reader || strcmp(w->reader, s->s_reader)))
			return false;
		if (sel->grep_len && !contains(&w->sent, sel->grep, sel->grep_len) &&
		    !contains(&w->received, sel->grep, sel->grep_len))
			return false;
		break;
	}
	}
	if (sel->reader && (!ev->reader || strcmp(ev->reader, sel->reader)))
		return false;
	return true;
}

int
tap_stream_next(struct tap_stream *s, struct tap_event *ev, int *err_file)
{
	for (;;) {
		struct tap_source *best = NULL;
		int rc;

		if (s->current >= 0) {
			struct tap_source *cur = &s->src[s->current];

			s->current = -1;
			rc = source_advance(cur);
			if (rc < 0) {
				*err_file = cur->file;
				return rc;
			}
		}
		for (size_t i = 0; i < s->n; i++) {
			struct tap_source *src = &s->src[i];

			if (!src->valid)
				continue;
			/* Ties keep the order of the sources: calls, markers, wire. */
			if (!best || source_time(src) < source_time(best))
				best = src;
		}
		if (!best)
			return 0;
		s->current = (int)(best - s->src);
		best->last_id = source_id(best);
		memset(ev, 0, sizeof(*ev));
		ev->kind = best->kind;
		ev->file = best->file;
		ev->t_ns = source_time(best);
		ev->id = best->last_id;
		switch (best->kind) {
		case TAP_CALL:
			ev->call = &best->row.call;
			ev->pid = best->row.call.pid;
			ev->wall_ns = best->row.call.call.wall_ns;
			break;
		case TAP_MARKER:
			ev->marker = &best->row.marker;
			ev->pid = best->row.marker.pid;
			ev->wall_ns = best->row.marker.marker.wall_ns;
			break;
		default:
			ev->wire = &best->row.wire;
			ev->pid = best->row.wire.pid;
			ev->wall_ns = best->row.wire.wire.wall_ns;
			break;
		}
		if (keep(s, ev))
			return 1;
	}
}

void
tap_stream_last_ids(const struct tap_stream *s, int64_t *ids)
{
	for (size_t i = 0; i < s->n; i++)
		ids[s->src[i].file * 3 + kind_index(s->src[i].kind)] = s->src[i].last_id;
}

void
tap_stream_close(struct tap_stream *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->src[i].it)
			trace_iter_end(s->src[i].it);
	tap_handles_free(s->handles);
	free(s->s_reader);
	free(s);
}

int
tap_input_start(struct tap_input *in, int64_t *t0, bool *empty, int *err_file)
{
	struct tap_select sel = { .kinds = TAP_ALL };
	struct tap_stream *s = NULL;
	struct tap_event ev;
	int rc;

	*t0 = 0;
	*empty = true;
	*err_file = 0;
	rc = tap_stream_open(&s, in, &sel, NULL);
	if (rc < 0)
		goto out;
	rc = tap_stream_next(s, &ev, err_file);
	if (rc > 0) {
		*t0 = ev.t_ns;
		*empty = false;
	}
	rc = rc < 0 ? rc : 0;
out:
	tap_stream_close(s);
	return rc;
}

static int
check_empty(struct tap_input *in, const char *cmd)
{
	int64_t t0;
	bool empty;
	int err_file;
	int rc = tap_input_start(in, &t0, &empty, &err_file);

	if (rc < 0)
		return tap_input_fail(in, cmd, err_file, rc);
	if (empty) {
		fprintf(stderr, "pcsctap %s: %s: empty trace (no calls, markers or wire events)\n",
			cmd, in->n == 1 ? in->files[0].path : "all traces");
		return PCSCTAP_EXIT_EMPTY;
	}
	return PCSCTAP_EXIT_OK;
}

int
tap_input_open_nonempty(struct tap_input **out, const char *cmd, char **paths, int n)
{
	int status = tap_input_open(out, cmd, paths, n);

	if (status == PCSCTAP_EXIT_OK)
		status = check_empty(*out, cmd);
	if (status != PCSCTAP_EXIT_OK) {
		tap_input_close(*out);
		*out = NULL;
	}
	return status;
}

/* ---------------------------------------------------------------------- */

#define HANDLE_BUCKETS 1024

struct handle_entry {
	struct handle_entry *next;
	int file;
	int64_t pid;
	uint64_t card;
	char *reader;
};

struct tap_handles {
	struct handle_entry *bucket[HANDLE_BUCKETS];
	char *forgotten;	/* the reader of the last Disconnect, kept one call */
};

struct tap_handles *
tap_handles_new(void)
{
	return calloc(1, sizeof(struct tap_handles));
}

void
tap_handles_free(struct tap_handles *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < HANDLE_BUCKETS; i++) {
		struct handle_entry *e = h->bucket[i];

		while (e) {
			struct handle_entry *next = e->next;

			free(e->reader);
			free(e);
			e = next;
		}
	}
	free(h->forgotten);
	free(h);
}

static struct handle_entry **
handle_slot(struct tap_handles *h, int file, int64_t pid, uint64_t card)
{
	uint64_t k = (card * 0x9E3779B97F4A7C15ull) ^ (uint64_t)pid ^ ((uint64_t)file << 40);
	struct handle_entry **p = &h->bucket[(k >> 20) % HANDLE_BUCKETS];

	while (*p && !((*p)->file == file && (*p)->pid == pid && (*p)->card == card))
		p = &(*p)->next;
	return p;
}

const char *
tap_handles_feed(struct tap_handles *h, int file, const struct trace_call_row *row)
{
	const struct trace_call *c = &row->call;
	struct handle_entry **slot, *e;

	if (!(c->present & TRACE_HAS_CARD))
		return c->reader;
	slot = handle_slot(h, file, row->pid, c->card);
	e = *slot;
	if (c->fn == TRACE_FN_SCardConnect && c->rv == 0 && c->reader) {
		/* A handle value reused after an unseen disconnect: replace. */
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e)
				return c->reader;
			e->file = file;
			e->pid = row->pid;
			e->card = c->card;
			*slot = e;
		}
		free(e->reader);
		e->reader = strdup(c->reader);
		return c->reader;
	}
	if (!e)
		return c->reader;
	if (c->fn == TRACE_FN_SCardDisconnect && c->rv == 0) {
		*slot = e->next;
		free(h->forgotten);
		h->forgotten = e->reader;
		free(e);
		return h->forgotten;
	}
	return e->reader;
}
