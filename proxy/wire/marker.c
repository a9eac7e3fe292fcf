/*
 * marker.c — the marker body codec (see wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const event_names[] = {
	[MARKER_CONNECT] = "connect",
	[MARKER_RECONNECT] = "reconnect",
	[MARKER_DISCONNECT] = "disconnect",
	[MARKER_BEGIN_TRANSACTION] = "begin-transaction",
	[MARKER_END_TRANSACTION] = "end-transaction",
	[MARKER_PROTOCOL] = "protocol",
	[MARKER_READER_IN_USE] = "reader-in-use",
	[MARKER_READER_EXCLUSIVE] = "reader-exclusive",
	[MARKER_READER_SHARED] = "reader-shared",
	[MARKER_READER_FREE] = "reader-free",
};

const char *
marker_event_name(uint8_t event)
{
	if (event >= sizeof(event_names) / sizeof(event_names[0]))
		return NULL;
	return event_names[event];
}

/* Where each fixed-size u32 field lives in struct marker. */
static uint32_t *
u32_field(struct marker *m, uint8_t tag)
{
	switch (tag) {
	case MARKER_TAG_PID: return &m->pid;
	case MARKER_TAG_HANDLE: return &m->handle;
	case MARKER_TAG_SEQ: return &m->seq;
	case MARKER_TAG_SHARE_MODE: return &m->share_mode;
	case MARKER_TAG_PREFERRED_PROTOCOLS: return &m->preferred_protocols;
	case MARKER_TAG_ACTIVE_PROTOCOL: return &m->active_protocol;
	case MARKER_TAG_DISPOSITION: return &m->disposition;
	case MARKER_TAG_HANDLES: return &m->handles;
	default: return NULL;
	}
}

struct encoder {
	uint8_t *buf;
	size_t len;
	size_t pos;
	int err;
};

static void
put_tlv(struct encoder *e, uint8_t tag, const uint8_t *value, size_t len)
{
	if (e->err)
		return;
	if (len > 0xFF || e->pos + 2 + len > e->len) {
		e->err = -ENOSPC;
		return;
	}
	e->buf[e->pos++] = tag;
	e->buf[e->pos++] = (uint8_t)len;
	memcpy(e->buf + e->pos, value, len);
	e->pos += len;
}

static void
put_uint(struct encoder *e, uint8_t tag, uint64_t v, size_t width)
{
	uint8_t be[8];

	for (size_t i = 0; i < width; i++)
		be[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
	put_tlv(e, tag, be, width);
}

ssize_t
marker_encode(const struct marker *m, uint8_t *buf, size_t len)
{
	struct encoder e = { .buf = buf, .len = len };
	struct marker copy = *m;

	if (!marker_event_name(m->event))
		return -EINVAL;
	if (len < 2)
		return -ENOSPC;
	buf[e.pos++] = MARKER_VERSION;
	buf[e.pos++] = m->event;
	/* Tags in ascending order, so that bodies compare byte for byte. */
	for (uint8_t tag = MARKER_TAG_PID; tag <= MARKER_TAG_LAST; tag++) {
		uint32_t *field;

		if (!(m->present & MARKER_HAS(tag)))
			continue;
		if (tag == MARKER_TAG_PROCESS) {
			size_t n = strnlen(m->process, sizeof(m->process) - 1);

			put_tlv(&e, tag, (const uint8_t *)m->process, n > 0xFF ? 0xFF : n);
		} else if (tag == MARKER_TAG_TIMESTAMP) {
			put_uint(&e, tag, m->timestamp_ns, 8);
		} else if ((field = u32_field(&copy, tag))) {
			put_uint(&e, tag, *field, 4);
		}
	}
	return e.err ? e.err : (ssize_t)e.pos;
}

static uint64_t
get_uint(const uint8_t *p, size_t width)
{
	uint64_t v = 0;

	for (size_t i = 0; i < width; i++)
		v = v << 8 | p[i];
	return v;
}

int
marker_decode(struct marker *m, const uint8_t *buf, size_t len)
{
	size_t pos = 2;

	memset(m, 0, sizeof(*m));
	if (len < 2)
		return -EPROTO;
	if (buf[0] != MARKER_VERSION)
		return -ENOTSUP;
	m->version = buf[0];
	m->event = buf[1];
	while (pos < len) {
		uint8_t tag, n;
		const uint8_t *value;
		uint32_t *field;

		if (len - pos < 2)
			return -EPROTO;
		tag = buf[pos];
		n = buf[pos + 1];
		pos += 2;
		if (len - pos < n)
			return -EPROTO;
		value = buf + pos;
		pos += n;

		if (tag == MARKER_TAG_PROCESS) {
			memcpy(m->process, value, n);
			m->process[n] = '\0';
		} else if (tag == MARKER_TAG_TIMESTAMP) {
			if (n != 8)
				return -EPROTO;
			m->timestamp_ns = get_uint(value, 8);
		} else if ((field = u32_field(m, tag))) {
			if (n != 4)
				return -EPROTO;
			*field = (uint32_t)get_uint(value, 4);
		} else {
			continue;	/* unknown tag: skipped, as the spec requires */
		}
		m->present |= MARKER_HAS(tag);
	}
	return 0;
}

int
marker_format(const struct marker *m, char *buf, size_t len)
{
	const char *name = marker_event_name(m->event);
	size_t pos = 0;
	int n;

#define APPEND(...)                                                      \
	do {                                                             \
		n = snprintf(buf + pos, pos < len ? len - pos : 0, __VA_ARGS__); \
		if (n < 0)                                               \
			return n;                                        \
		pos += (size_t)n;                                        \
	} while (0)

	if (len)
		buf[0] = '\0';
	if (name)
		APPEND("%s", name);
	else
		APPEND("event-0x%02x", m->event);
	if (m->present & MARKER_HAS(MARKER_TAG_PID))
		APPEND(" pid=%u", m->pid);
	if (m->present & MARKER_HAS(MARKER_TAG_HANDLE))
		APPEND(" handle=0x%x", m->handle);
	if (m->present & MARKER_HAS(MARKER_TAG_PROCESS))
		APPEND(" process=%s", m->process);
	if (m->present & MARKER_HAS(MARKER_TAG_SEQ))
		APPEND(" seq=%u", m->seq);
	if (m->present & MARKER_HAS(MARKER_TAG_SHARE_MODE))
		APPEND(" share=%u", m->share_mode);
	if (m->present & MARKER_HAS(MARKER_TAG_PREFERRED_PROTOCOLS))
		APPEND(" preferred=0x%x", m->preferred_protocols);
	if (m->present & MARKER_HAS(MARKER_TAG_ACTIVE_PROTOCOL))
		APPEND(" protocol=0x%x", m->active_protocol);
	if (m->present & MARKER_HAS(MARKER_TAG_DISPOSITION))
		APPEND(" disposition=%u", m->disposition);
	if (m->present & MARKER_HAS(MARKER_TAG_HANDLES))
		APPEND(" handles=%u", m->handles);
	if (m->present & MARKER_HAS(MARKER_TAG_TIMESTAMP))
		APPEND(" t=%llu", (unsigned long long)m->timestamp_ns);
#undef APPEND
	return (int)pos;
}
