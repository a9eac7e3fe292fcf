/*
 * events.c — see events.h.
 */
#include "events.h"
#include "commands.h"
#include "handles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	for (int i = 0; i < tap_input_count(s->in); i++) {
		struct trace_filter f = { .session = s->sel.session };
		struct trace_iter *it = NULL;
		struct trace_session row;
		int rc;

		rc = trace_iter_sessions(tap_input_reader(s->in, i), &f, &it);
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
	s->handles = tap_handles_new(in);
	if (!s->handles) {
		rc = -ENOMEM;
		goto out;
	}
	if (s->sel.session) {
		rc = resolve_session(s);
		if (rc < 0)
			goto out;
	}
	for (int i = 0; i < tap_input_count(in); i++) {
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
				rc = trace_iter_calls(tap_input_reader(in, i), &f, &src->it);
				break;
			case TAP_MARKER:
				rc = trace_iter_markers(tap_input_reader(in, i), &f, &src->it);
				break;
			default:
				rc = trace_iter_wire(tap_input_reader(in, i), &f, &src->it);
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

/*
 * The filters the reader was not trusted with; fills ev->reader.
 * @retval 1 keep, 0 skip, <0 a reader error
 */
static int
keep(struct tap_stream *s, struct tap_event *ev)
{
	const struct tap_select *sel = &s->sel;

	if (sel->pid && ev->pid != sel->pid && !(s->by_session && ev->kind == TAP_WIRE))
		return 0;
	if (sel->since_ns && ev->t_ns < sel->since_ns)
		return 0;
	if (sel->until_ns && ev->t_ns > sel->until_ns)
		return 0;
	switch (ev->kind) {
	case TAP_CALL: {
		const struct trace_call *c = &ev->call->call;
		int rc = tap_handles_feed(s->handles, ev->file, ev->call, &ev->reader);

		if (rc < 0)
			return rc;
		if (sel->fn && c->fn != sel->fn)
			return 0;
		if (s->by_session) {
			if (ev->file != s->s_file || ev->pid != s->s_pid ||
			    !(c->present & TRACE_HAS_CARD) || c->card != s->s_card ||
			    ev->t_ns < s->s_start || (s->s_end && ev->t_ns > s->s_end))
				return 0;
		}
		if (sel->grep_len && !contains(&c->in, sel->grep, sel->grep_len) &&
		    !contains(&c->out, sel->grep, sel->grep_len))
			return 0;
		break;
	}
	case TAP_MARKER: {
		const struct trace_marker *m = &ev->marker->marker;

		ev->reader = m->reader;
		if (s->by_session && (ev->file != s->s_file || ev->pid != s->s_pid ||
				      m->card != s->s_card))
			return 0;
		if (sel->grep_len && !contains(&m->body, sel->grep, sel->grep_len))
			return 0;
		break;
	}
	default: {
		const struct trace_wire *w = &ev->wire->wire;

		ev->reader = w->reader;
		if (s->by_session && s->s_reader && (!w->reader || strcmp(w->reader, s->s_reader)))
			return 0;
		if (sel->grep_len && !contains(&w->sent, sel->grep, sel->grep_len) &&
		    !contains(&w->received, sel->grep, sel->grep_len))
			return 0;
		break;
	}
	}
	if (sel->reader && (!ev->reader || strcmp(ev->reader, sel->reader)))
		return 0;
	return 1;
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
		rc = keep(s, ev);
		if (rc < 0)
			*err_file = ev->file;
		if (rc != 0)
			return rc;
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
			cmd, tap_input_count(in) == 1 ? tap_input_path(in, 0) : "all traces");
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
