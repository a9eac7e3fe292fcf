/*
 * side.c — names and integers of the marker side channel (see wire.h):
 * the driver names its sockets from the Lun, the shim from the reader name.
 */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
side_socket_name(char *out, size_t cap, unsigned reader, unsigned slot)
{
	return snprintf(out, cap, SIDE_SOCKET_PREFIX "%02X-%02X", reader & 0xFF, slot & 0xFF);
}

static int
hex_word(const char *p, unsigned *v)
{
	char *end;

	if (!strchr("0123456789ABCDEFabcdef", p[0]) || !p[0] ||
	    !strchr("0123456789ABCDEFabcdef", p[1]) || !p[1])
		return -EINVAL;
	*v = (unsigned)strtoul(p, &end, 16);
	return end == p + 2 ? 0 : -EINVAL;
}

int
side_reader_numbers(const char *reader_name, unsigned *reader, unsigned *slot)
{
	size_t len = reader_name ? strlen(reader_name) : 0;
	const char *tail;

	/* " XX YY" */
	if (len < 6)
		return -EINVAL;
	tail = reader_name + len - 6;
	if (tail[0] != ' ' || tail[3] != ' ')
		return -EINVAL;
	if (hex_word(tail + 1, reader) < 0 || hex_word(tail + 4, slot) < 0)
		return -EINVAL;
	return 0;
}

void
wire_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t
wire_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
