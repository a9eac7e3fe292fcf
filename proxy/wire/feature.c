/*
 * feature.c — PC/SC part 10 feature list entries (see wire.h): written by
 * the driver, read by the shim.
 */
#include "wire.h"

void
feature_put(uint8_t *p, uint8_t tag, uint32_t code)
{
	p[0] = tag;
	p[1] = 4;
	wire_put_u32(p + 2, code);
}

uint32_t
feature_find(const uint8_t *list, size_t len, uint8_t tag)
{
	for (size_t i = 0; i + 2 <= len; i += 2 + (size_t)list[i + 1]) {
		if (list[i] == tag && list[i + 1] == 4 && i + FEATURE_TLV_SIZE <= len)
			return wire_get_u32(list + i + 2);
	}
	return 0;
}
