/*
 * wiretrace.c — the driver's wire view in a pcsctap trace (trace/).
 *
 * One writer per trace path for the whole pcscd process, shared by every
 * slot and reader that names the same file, counted by reference.
 */
#include "driver.h"
#include "trace.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct wiretrace {
	struct wiretrace *next;
	char *path;
	unsigned refs;
	struct trace_writer *writer;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wiretrace *registry;

struct wiretrace *
wiretrace_open(const char *path)
{
	struct trace_writer_options opt = { .role = "driver" };
	struct wiretrace *t;

	pthread_mutex_lock(&registry_lock);
	for (t = registry; t; t = t->next) {
		if (!strcmp(t->path, path)) {
			t->refs++;
			goto out;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->path = strdup(path);
	if (!t->path || trace_writer_open(&t->writer, path, &opt) < 0) {
		driver_log(DRIVER_LOG_ERROR, "pcsctap: cannot open the trace %s", path);
		free(t->path);
		free(t);
		t = NULL;
		goto out;
	}
	t->refs = 1;
	t->next = registry;
	registry = t;
out:
	pthread_mutex_unlock(&registry_lock);
	return t;
}

void
wiretrace_close(struct wiretrace *t)
{
	struct wiretrace **pp;

	if (!t)
		return;
	pthread_mutex_lock(&registry_lock);
	if (--t->refs > 0)
		goto out;
	for (pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	trace_writer_close(t->writer);
	free(t->path);
	free(t);
out:
	pthread_mutex_unlock(&registry_lock);
}

void
wiretrace_record(struct wiretrace *t, const char *reader, int kind, int64_t t_start_ns,
		 const uint8_t *sent, size_t sent_len, const uint8_t *received,
		 size_t received_len, const char *detail)
{
	struct trace_wire w = {
		.t_ns = t_start_ns,
		.t_end_ns = trace_mono_ns(),
		.wall_ns = trace_wall_ns(),
		.reader = reader,
		.kind = kind,
		.sent = { sent, sent_len },
		.received = { received, received_len },
		.detail = detail,
	};
	uint8_t *redacted = NULL;

	if (!t)
		return;
	/*
	 * PINs stay out of the wire view as out of the shim's trace; the card
	 * gets the real bytes.  (No opt-out here: debug PIN handling with the
	 * shim's pcsctap run --no-redact.)
	 */
	if (kind == TRACE_WIRE_APDU && sent && trace_redact_apdu(sent, sent_len, &redacted) != 0) {
		/* Redacted, or (no memory for the copy) no data at all. */
		w.sent.data = redacted;
		if (!redacted)
			w.sent.len = 0;
	}
	trace_write_wire(t->writer, &w);
	free(redacted);
}
