/*
 * marker_vectors.c — prints marker bodies made by marker_encode, one JSON
 * object a line: {"hex": BODY, "expect": {FIELDS}}, for the test of the
 * Python reference parser in docs/markers.md.  Bodies with unknown tags
 * appended test that parsers skip them.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

static void
emit(const struct marker *m, const uint8_t *extra, size_t extra_len)
{
	uint8_t buf[MARKER_MAX_BODY + 64];
	ssize_t n = marker_encode(m, buf, MARKER_MAX_BODY);
	const char *sep = "";

	if (n < 0)
		return;
	/* memcpy from NULL is undefined even for 0 bytes (UBSan says so). */
	if (extra_len)
		memcpy(buf + n, extra, extra_len);
	n += (ssize_t)extra_len;
	printf("{\"hex\": \"");
	for (ssize_t i = 0; i < n; i++)
		printf("%02x", buf[i]);
	printf("\", \"expect\": {\"version\": %u, \"event\": %u, \"event_name\": \"%s\"",
	       MARKER_VERSION, m->event, marker_event_name(m->event));
#define FIELD(tag, key, fmt, val)                                              \
	if (m->present & MARKER_HAS(tag))                                      \
		printf(", \"" key "\": " fmt, val)
	FIELD(MARKER_TAG_PID, "pid", "%u", m->pid);
	FIELD(MARKER_TAG_HANDLE, "handle", "%u", m->handle);
	FIELD(MARKER_TAG_PROCESS, "process", "\"%s\"", m->process);
	FIELD(MARKER_TAG_SEQ, "seq", "%u", m->seq);
	FIELD(MARKER_TAG_TIMESTAMP, "timestamp_ns", "%llu", (unsigned long long)m->timestamp_ns);
	FIELD(MARKER_TAG_SHARE_MODE, "share_mode", "%u", m->share_mode);
	FIELD(MARKER_TAG_PREFERRED_PROTOCOLS, "preferred_protocols", "%u", m->preferred_protocols);
	FIELD(MARKER_TAG_ACTIVE_PROTOCOL, "active_protocol", "%u", m->active_protocol);
	FIELD(MARKER_TAG_DISPOSITION, "disposition", "%u", m->disposition);
	FIELD(MARKER_TAG_HANDLES, "handles", "%u", m->handles);
#undef FIELD
	(void)sep;
	printf("}}\n");
}

int
main(void)
{
	static const uint8_t unknown[] = { 0x7E, 3, 'x', 'y', 'z', 0xF0, 0 };
	struct marker m = {
		.event = MARKER_CONNECT,
		.present = 0x7FE,	/* every field, tags 1..10 */
		.pid = 4242,
		.handle = 0x7A3B1C00,
		.process = "opensc-tool",
		.seq = 1,
		.timestamp_ns = 0x0123456789ABCDEFull,
		.share_mode = 2,
		.preferred_protocols = 3,
		.active_protocol = 2,
		.disposition = 0,
		.handles = 3,
	};

	emit(&m, NULL, 0);
	m.event = MARKER_DISCONNECT;
	m.present = MARKER_HAS(MARKER_TAG_PID) | MARKER_HAS(MARKER_TAG_HANDLE) |
		    MARKER_HAS(MARKER_TAG_SEQ) | MARKER_HAS(MARKER_TAG_DISPOSITION);
	m.seq = 0xFFFFFFFFu;
	m.disposition = 1;
	emit(&m, unknown, sizeof(unknown));
	for (uint8_t ev = MARKER_CONNECT; ev <= MARKER_EVENT_LAST; ev++) {
		struct marker e = {
			.event = ev,
			.present = MARKER_HAS(MARKER_TAG_ACTIVE_PROTOCOL) | MARKER_HAS(MARKER_TAG_PROCESS),
			.active_protocol = 1,
			.process = "java",
		};

		emit(&e, NULL, 0);
	}
	/* Occupancy as the driver sends it: a time and the count of handles. */
	m.event = MARKER_READER_IN_USE;
	m.present = MARKER_HAS(MARKER_TAG_TIMESTAMP) | MARKER_HAS(MARKER_TAG_HANDLES);
	m.handles = 0xFFFFFFFFu;
	emit(&m, unknown, sizeof(unknown));
	m.event = MARKER_BEGIN_TRANSACTION;
	m.present = MARKER_HAS(MARKER_TAG_PROCESS);
	memset(m.process, 'p', 255);
	m.process[255] = '\0';
	emit(&m, unknown, 5);
	return 0;
}
