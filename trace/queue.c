/*
 * queue.c — copying events into single blocks, and the bounded FIFO.
 * See queue.h.
 */
#include "queue.h"

#include <stdlib.h>
#include <string.h>

/* Bump allocator inside one event block. */
struct packer {
	uint8_t *p;
};

static size_t
str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *
pack_str(struct packer *pk, const char *s)
{
	size_t n;
	char *d;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	d = (char *)pk->p;
	memcpy(d, s, n);
	pk->p += n;
	return d;
}

static struct trace_blob
pack_blob(struct packer *pk, struct trace_blob b)
{
	struct trace_blob r = { NULL, 0 };

	if (!b.data)
		return r;
	r.data = pk->p;
	r.len = b.len;
	if (b.len)
		memcpy(pk->p, b.data, b.len);
	pk->p += b.len;
	return r;
}

static struct tq_event *
event_alloc(size_t extra, int kind)
{
	size_t size = sizeof(struct tq_event) + extra;
	struct tq_event *ev = malloc(size);

	if (!ev)
		return NULL;
	ev->next = NULL;
	ev->size = size;
	ev->kind = kind;
	return ev;
}

size_t
tq_event_call_size(const struct trace_call *c)
{
	size_t extra;

	extra = str_size(c->reader) + str_size(c->extra) +
		(c->in.data ? c->in.len : 0) + (c->out.data ? c->out.len : 0);
	if (c->states && c->n_states) {
		extra += c->n_states * sizeof(struct trace_reader_state);
		for (size_t i = 0; i < c->n_states; i++)
			extra += str_size(c->states[i].reader) +
				 (c->states[i].atr.data ? c->states[i].atr.len : 0);
	}
	return sizeof(struct tq_event) + extra;
}

struct tq_event *
tq_event_call(const struct trace_call *c)
{
	size_t size = tq_event_call_size(c);
	void *mem = malloc(size);

	return mem ? tq_event_call_at(mem, size, c) : NULL;
}

struct tq_event *
tq_event_call_at(void *mem, size_t cap, const struct trace_call *c)
{
	struct trace_reader_state *states;
	struct tq_event *ev = mem;
	struct packer pk;

	ev->next = NULL;
	ev->size = cap;
	ev->kind = TQ_CALL;
	ev->u.call = *c;
	pk.p = (uint8_t *)(ev + 1);
	/* The state array goes first: the block's start is suitably aligned. */
	if (c->states && c->n_states) {
		states = (struct trace_reader_state *)pk.p;
		pk.p += c->n_states * sizeof(struct trace_reader_state);
		for (size_t i = 0; i < c->n_states; i++) {
			states[i] = c->states[i];
			states[i].reader = pack_str(&pk, c->states[i].reader);
			states[i].atr = pack_blob(&pk, c->states[i].atr);
		}
		ev->u.call.states = states;
	} else {
		ev->u.call.states = NULL;
		ev->u.call.n_states = 0;
	}
	ev->u.call.reader = pack_str(&pk, c->reader);
	ev->u.call.extra = pack_str(&pk, c->extra);
	ev->u.call.in = pack_blob(&pk, c->in);
	ev->u.call.out = pack_blob(&pk, c->out);
	return ev;
}

struct tq_event *
tq_event_marker(const struct trace_marker *m)
{
	struct tq_event *ev;
	struct packer pk;

	ev = event_alloc(str_size(m->reader) + (m->body.data ? m->body.len : 0), TQ_MARKER);
	if (!ev)
		return NULL;
	ev->u.marker = *m;
	pk.p = (uint8_t *)(ev + 1);
	ev->u.marker.reader = pack_str(&pk, m->reader);
	ev->u.marker.body = pack_blob(&pk, m->body);
	return ev;
}

struct tq_event *
tq_event_wire(const struct trace_wire *w)
{
	struct tq_event *ev;
	struct packer pk;

	ev = event_alloc(str_size(w->reader) + str_size(w->detail) +
			 (w->sent.data ? w->sent.len : 0) +
			 (w->received.data ? w->received.len : 0), TQ_WIRE);
	if (!ev)
		return NULL;
	ev->u.wire = *w;
	pk.p = (uint8_t *)(ev + 1);
	ev->u.wire.reader = pack_str(&pk, w->reader);
	ev->u.wire.detail = pack_str(&pk, w->detail);
	ev->u.wire.sent = pack_blob(&pk, w->sent);
	ev->u.wire.received = pack_blob(&pk, w->received);
	return ev;
}

void
tq_event_free_list(struct tq_event *ev)
{
	while (ev) {
		struct tq_event *next = ev->next;

		free(ev);
		ev = next;
	}
}

void
tq_fifo_init(struct tq_fifo *q, size_t max_n, size_t max_bytes)
{
	q->head = NULL;
	q->tail = &q->head;
	q->n = 0;
	q->bytes = 0;
	q->max_n = max_n;
	q->max_bytes = max_bytes;
	q->peak_n = 0;
	q->peak_bytes = 0;
}

int
tq_fifo_push(struct tq_fifo *q, struct tq_event *ev)
{
	if (q->n >= q->max_n || q->bytes + ev->size > q->max_bytes)
		return 0;
	ev->next = NULL;
	*q->tail = ev;
	q->tail = &ev->next;
	q->n++;
	q->bytes += ev->size;
	if (q->n > q->peak_n)
		q->peak_n = q->n;
	if (q->bytes > q->peak_bytes)
		q->peak_bytes = q->bytes;
	return 1;
}

struct tq_event *
tq_fifo_take(struct tq_fifo *q, size_t *n)
{
	struct tq_event *head = q->head;

	*n = q->n;
	q->head = NULL;
	q->tail = &q->head;
	q->n = 0;
	q->bytes = 0;
	return head;
}
