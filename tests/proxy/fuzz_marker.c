/*
 * fuzz_marker.c — libFuzzer target: the marker body parser (marker.c),
 * as the driver runs it on every SCardControl marker and a card on every
 * marker frame.  A body that decodes must encode again, and the encoding
 * must decode to the same marker (canonical form: known tags, ascending).
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct marker a, b;
	uint8_t buf[MARKER_MAX_BODY * 2];
	char text[1024];
	ssize_t n;

	if (marker_decode(&a, data, size) != 0)
		return 0;
	(void)marker_format(&a, text, sizeof(text));
	(void)marker_format(&a, text, 7);
	if (!marker_event_name(a.event))
		return 0;
	n = marker_encode(&a, buf, sizeof(buf));
	if (n < 0)
		abort();
	if (marker_decode(&b, buf, (size_t)n) != 0)
		abort();
	if (a.present != b.present || a.event != b.event || a.pid != b.pid ||
	    a.handle != b.handle || a.seq != b.seq || a.timestamp_ns != b.timestamp_ns ||
	    a.share_mode != b.share_mode || a.preferred_protocols != b.preferred_protocols ||
	    a.active_protocol != b.active_protocol || a.disposition != b.disposition)
		abort();
	/* A process name with a NUL inside is cut there: compare as strings. */
	if (strcmp(a.process, b.process) != 0)
		abort();
	return 0;
}
