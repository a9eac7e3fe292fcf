/*
 * handles.c — see handles.h.
 */
#include "handles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HANDLE_BUCKETS 1024

struct handle_entry {
	struct handle_entry *next;
	int file;
	int64_t pid;
	uint64_t card;
	char *reader;
};

struct tap_handles {
	struct tap_input *in;	/* where unknown handles are looked up, */
	struct trace_reader *reader;	/* or here when in is NULL */
	struct handle_entry *bucket[HANDLE_BUCKETS];
	char *forgotten;	/* the reader of the last Disconnect, kept one call */
};

struct tap_handles *
tap_handles_new(struct tap_input *in)
{
	struct tap_handles *h = calloc(1, sizeof(*h));

	if (h)
		h->in = in;
	return h;
}

struct tap_handles *
tap_handles_new_reader(struct trace_reader *r)
{
	struct tap_handles *h = tap_handles_new(NULL);

	if (h)
		h->reader = r;
	return h;
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

/*
 * The handle's reader from the whole trace: the last successful
 * SCardConnect of the process that returned @p card before the call.
 * (A Disconnect in between is not looked for: the handle is not valid
 * then, and the apdus view of the schema attributes the same way.)
 */
static int
look_up(struct tap_handles *h, int file, const struct trace_call_row *row, char **reader)
{
	struct trace_filter f = {
		.pid = row->pid,
		.fn = TRACE_FN_SCardConnect,
		.until_ns = row->call.t_enter_ns,
	};
	struct trace_iter *it = NULL;
	struct trace_call_row c;
	int rc;

	*reader = NULL;
	rc = trace_iter_calls(h->in ? tap_input_reader(h->in, file) : h->reader, &f, &it);
	if (rc < 0)
		return rc;
	while ((rc = trace_iter_call_next(it, &c)) > 0) {
		if (c.id >= row->id || c.call.rv != 0 || !c.call.reader ||
		    !(c.call.present & TRACE_HAS_CARD) || c.call.card != row->call.card)
			continue;
		free(*reader);
		*reader = strdup(c.call.reader);
		if (!*reader) {
			rc = -ENOMEM;
			break;
		}
	}
	trace_iter_end(it);
	return rc < 0 ? rc : 0;
}

static struct handle_entry *
add_entry(struct handle_entry **slot, int file, int64_t pid, uint64_t card)
{
	struct handle_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->file = file;
	e->pid = pid;
	e->card = card;
	*slot = e;
	return e;
}

int
tap_handles_feed(struct tap_handles *h, int file, const struct trace_call_row *row,
		 const char **reader)
{
	const struct trace_call *c = &row->call;
	struct handle_entry **slot, *e;
	int rc;

	*reader = c->reader;
	if (!(c->present & TRACE_HAS_CARD))
		return 0;
	slot = handle_slot(h, file, row->pid, c->card);
	e = *slot;
	if (c->fn == TRACE_FN_SCardConnect && c->rv == 0 && c->reader) {
		/* A handle value reused after an unseen disconnect: replace. */
		if (!e && !(e = add_entry(slot, file, row->pid, c->card)))
			return -ENOMEM;
		free(e->reader);
		e->reader = strdup(c->reader);
		return e->reader ? 0 : -ENOMEM;
	}
	if (!e) {
		/* Its Connect came before the window (--since, --follow, --pid). */
		if (!(e = add_entry(slot, file, row->pid, c->card)))
			return -ENOMEM;
		rc = look_up(h, file, row, &e->reader);
		if (rc < 0)
			return rc;
	}
	*reader = e->reader;
	if (c->fn == TRACE_FN_SCardDisconnect && c->rv == 0) {
		*slot = e->next;
		free(h->forgotten);
		h->forgotten = e->reader;
		free(e);
	}
	return 0;
}
