#include "pcapng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define BYTE_ORDER_MAGIC 0x1A2B3C4Du

#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_TSRESOL 9
#define EPB_FLAGS 2

#define MAX_PACKET (16u << 20)
#define MAX_OPTION 65535u

struct pcapng_writer {
	FILE *f;
	uint8_t *buf;		/* one block being assembled */
	size_t cap;
	size_t len;
	uint32_t n_interfaces;
	int error;
};

static size_t
pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static int
reserve(struct pcapng_writer *w, size_t more)
{
	size_t need = w->len + more;
	uint8_t *p;
	size_t cap;

	if (need <= w->cap)
		return 0;
	cap = w->cap ? w->cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(w->buf, cap);
	if (!p)
		return -ENOMEM;
	w->buf = p;
	w->cap = cap;
	return 0;
}

/* Callers reserve first: these cannot fail. */
static void
put(struct pcapng_writer *w, const void *data, size_t len)
{
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
}

static void
put_u16(struct pcapng_writer *w, uint16_t v)
{
	put(w, &v, sizeof(v));
}

static void
put_u32(struct pcapng_writer *w, uint32_t v)
{
	put(w, &v, sizeof(v));
}

static void
put_pad(struct pcapng_writer *w)
{
	static const uint8_t zero[4];

	put(w, zero, pad4(w->len) - w->len);
}

/* Worst case room for one option of @p len bytes. */
static size_t
option_room(size_t len)
{
	return 4 + pad4(len);
}

static void
put_option(struct pcapng_writer *w, uint16_t code, const void *data, size_t len)
{
	put_u16(w, code);
	put_u16(w, (uint16_t)len);
	put(w, data, len);
	put_pad(w);
}

static void
begin_block(struct pcapng_writer *w, uint32_t type)
{
	w->len = 0;
	put_u32(w, type);
	put_u32(w, 0);		/* total length, patched by end_block() */
}

static int
end_block(struct pcapng_writer *w)
{
	uint32_t total = (uint32_t)(w->len + 4);

	put_u32(w, total);
	memcpy(w->buf + 4, &total, sizeof(total));
	if (fwrite(w->buf, 1, w->len, w->f) != w->len) {
		w->error = -EIO;
		return -EIO;
	}
	return 0;
}

static size_t
cut(const char *text)
{
	size_t n = text ? strlen(text) : 0;

	return n > MAX_OPTION ? MAX_OPTION : n;
}

int
pcapng_writer_open(struct pcapng_writer **out, FILE *f, const char *application)
{
	struct pcapng_writer *w;
	size_t app_len = cut(application);
	int64_t section_len = -1;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->f = f;
	rc = reserve(w, 32 + option_room(app_len) + 4);
	if (rc < 0)
		goto out;
	begin_block(w, BT_SHB);
	put_u32(w, BYTE_ORDER_MAGIC);
	put_u16(w, 1);
	put_u16(w, 0);
	put(w, &section_len, sizeof(section_len));
	if (app_len)
		put_option(w, SHB_USERAPPL, application, app_len);
	put_option(w, OPT_END, NULL, 0);
	rc = end_block(w);
out:
	if (rc < 0) {
		free(w->buf);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int
pcapng_add_interface(struct pcapng_writer *w, uint16_t linktype,
		     const char *name, uint32_t *id)
{
	size_t name_len = cut(name);
	uint8_t tsresol = 9;	/* nanoseconds */
	int rc;

	rc = reserve(w, 20 + option_room(name_len) + option_room(1) + 8);
	if (rc < 0)
		goto out;
	begin_block(w, BT_IDB);
	put_u16(w, linktype);
	put_u16(w, 0);
	put_u32(w, 0);		/* snaplen: no limit */
	if (name_len)
		put_option(w, IF_NAME, name, name_len);
	put_option(w, IF_TSRESOL, &tsresol, 1);
	put_option(w, OPT_END, NULL, 0);
	rc = end_block(w);
	if (rc < 0)
		goto out;
	*id = w->n_interfaces++;
out:
	return rc;
}

int
pcapng_write_packet(struct pcapng_writer *w, uint32_t iface, int64_t ts_ns,
		    const uint8_t *data, size_t len, size_t orig_len, uint32_t flags,
		    const char *comment)
{
	size_t comment_len = cut(comment);
	uint64_t ts = (uint64_t)ts_ns;
	int rc;

	if (iface >= w->n_interfaces || len > MAX_PACKET || orig_len < len ||
	    orig_len > UINT32_MAX)
		return -EINVAL;
	rc = reserve(w, 32 + pad4(len) + option_room(comment_len) + option_room(4) + 8);
	if (rc < 0)
		goto out;
	begin_block(w, BT_EPB);
	put_u32(w, iface);
	put_u32(w, (uint32_t)(ts >> 32));
	put_u32(w, (uint32_t)ts);
	put_u32(w, (uint32_t)len);
	put_u32(w, (uint32_t)orig_len);
	put(w, data, len);
	put_pad(w);
	if (comment_len)
		put_option(w, OPT_COMMENT, comment, comment_len);
	if (flags)
		put_option(w, EPB_FLAGS, &flags, sizeof(flags));
	if (comment_len || flags)
		put_option(w, OPT_END, NULL, 0);
	rc = end_block(w);
out:
	return rc;
}

int
pcapng_writer_close(struct pcapng_writer *w)
{
	int rc;

	if (!w)
		return 0;
	rc = w->error;
	if (fflush(w->f) != 0 || ferror(w->f))
		rc = -EIO;
	free(w->buf);
	free(w);
	return rc;
}

size_t
exported_pdu_build(uint8_t *buf, size_t cap, const char *dissector,
		   int direction, const uint8_t *payload, size_t len)
{
	size_t name_len = strlen(dissector);
	size_t need = 4 + name_len + (direction != EXP_PDU_DIR_NONE ? 8 : 0) + 4 + len;
	size_t pos = 0;

	if (need > cap || name_len > 0xFFFF)
		return need;
	/* The tags are big-endian whatever the file's byte order. */
	buf[pos++] = 0;
	buf[pos++] = EXP_PDU_TAG_DISSECTOR_NAME;
	buf[pos++] = (uint8_t)(name_len >> 8);
	buf[pos++] = (uint8_t)name_len;
	memcpy(buf + pos, dissector, name_len);
	pos += name_len;
	if (direction != EXP_PDU_DIR_NONE) {
		uint32_t d = (uint32_t)direction;

		buf[pos++] = 0;
		buf[pos++] = EXP_PDU_TAG_P2P_DIRECTION;
		buf[pos++] = 0;
		buf[pos++] = 4;
		buf[pos++] = (uint8_t)(d >> 24);
		buf[pos++] = (uint8_t)(d >> 16);
		buf[pos++] = (uint8_t)(d >> 8);
		buf[pos++] = (uint8_t)d;
	}
	memset(buf + pos, 0, 4);
	pos += 4;
	if (len)
		memcpy(buf + pos, payload, len);
	return need;
}

static uint32_t
get_u32(const uint8_t *p, int swap)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return swap ? __builtin_bswap32(v) : v;
}

int
pcapng_check(const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	int swap = 0;
	int n = 0;

	while (pos < len) {
		uint32_t type, total;

		if (len - pos < 12)
			return -EPROTO;
		type = get_u32(buf + pos, 0);
		if (type == BT_SHB) {
			uint32_t magic = get_u32(buf + pos + 8, 0);

			if (magic == BYTE_ORDER_MAGIC)
				swap = 0;
			else if (magic == __builtin_bswap32(BYTE_ORDER_MAGIC))
				swap = 1;
			else
				return -EPROTO;
		} else if (n == 0) {
			return -EPROTO;
		}
		total = get_u32(buf + pos + 4, swap);
		if (total < 12 || total % 4 || total > len - pos)
			return -EPROTO;
		if (get_u32(buf + pos + total - 4, swap) != total)
			return -EPROTO;
		pos += total;
		n++;
	}
	return n;
}
