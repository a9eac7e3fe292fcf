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
	p[2] = (uint8_t)(code >> 24);
	p[3] = (uint8_t)(code >> 16);
	p[4] = (uint8_t)(code >> 8);
	p[5] = (uint8_t)code;
}

uint32_t
feature_find(const uint8_t *list, size_t len, uint8_t tag)
{
	for (size_t i = 0; i + 2 <= len; i += 2 + (size_t)list[i + 1]) {
		const uint8_t *v = list + i + 2;

		if (list[i] == tag && list[i + 1] == 4 && i + FEATURE_TLV_SIZE <= len)
			return (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	}
	return 0;
}
