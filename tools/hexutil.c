#include "hexutil.h"

#include <errno.h>

char *
hex_encode(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0x0F];
	}
	out[2 * len] = '\0';
	return out;
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

ssize_t
hex_decode(const char *text, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int high = -1;

	for (; *text; text++) {
		int v;

		if (*text == ' ' || *text == ':')
			continue;
		v = nibble(*text);
		if (v < 0)
			return -EINVAL;
		if (high < 0) {
			high = v;
			continue;
		}
		if (n >= cap)
			return -ENOSPC;
		out[n++] = (uint8_t)(high << 4 | v);
		high = -1;
	}
	return high < 0 ? (ssize_t)n : -EINVAL;
}
