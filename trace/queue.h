/*
 * queue.h — events as the writer queues them, and the bounded FIFO that
 * holds them between the caller's thread and the writer thread.
 *
 * An event is one malloc'd block: the header, then copies of every string
 * and buffer the caller passed, with the pointers in the embedded public
 * struct redirected into the copy.  The writer binds straight from it.
 * The FIFO itself does no locking: the writer owns the lock (writer.c).
 */
#pragma once

#include "trace.h"

#include <stddef.h>
#include <stdint.h>

enum tq_kind {
	TQ_CALL = 1,
	TQ_MARKER = 2,
	TQ_WIRE = 3,
};

struct tq_event {
	struct tq_event *next;
	size_t size;		/* bytes of the whole block, counted against the bound */
	int kind;		/* enum tq_kind */
	union {
		struct trace_call call;
		struct trace_marker marker;
		struct trace_wire wire;
	} u;
};

/* Copy an event into one block; NULL when out of memory. */
struct tq_event *tq_event_call(const struct trace_call *call);
/* The bytes tq_event_call() needs for @p call. */
size_t tq_event_call_size(const struct trace_call *call);
/* Copy @p call into @p mem, a block of @p cap >= tq_event_call_size() bytes
 * (ev->size = @p cap). */
struct tq_event *tq_event_call_at(void *mem, size_t cap, const struct trace_call *call);
struct tq_event *tq_event_marker(const struct trace_marker *marker);
struct tq_event *tq_event_wire(const struct trace_wire *wire);
void tq_event_free_list(struct tq_event *ev);

struct tq_fifo {
	struct tq_event *head;
	struct tq_event **tail;
	size_t n;
	size_t bytes;
	size_t max_n;
	size_t max_bytes;
	size_t peak_n;
	size_t peak_bytes;
};

void tq_fifo_init(struct tq_fifo *q, size_t max_n, size_t max_bytes);
/* @retval 1 queued, 0 full (the caller still owns @p ev) */
int tq_fifo_push(struct tq_fifo *q, struct tq_event *ev);
/* Detach everything; *n receives the count. */
struct tq_event *tq_fifo_take(struct tq_fifo *q, size_t *n);
