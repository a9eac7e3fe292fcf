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
