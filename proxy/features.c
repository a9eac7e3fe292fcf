/*
 * features.c — the driver's PC/SC part 10 answers: the feature list
 * (CM_IOCTL_GET_FEATURE_REQUEST) and FEATURE_GET_TLV_PROPERTIES.
 */
#include "config.h"
#include "driver.h"
#include "marker.h"

#include <errno.h>
#include <string.h>

/* One feature: tag, length 4, control code big-endian (part 10 §2.2). */
static void
put_feature(uint8_t *p, uint8_t tag, uint32_t code)
{
	p[0] = tag;
	p[1] = 4;
	p[2] = (uint8_t)(code >> 24);
	p[3] = (uint8_t)(code >> 16);
	p[4] = (uint8_t)(code >> 8);
	p[5] = (uint8_t)code;
}

ssize_t
features_answer(bool markers, uint8_t *out, size_t cap)
{
	size_t need = markers ? 12 : 6;

	if (cap < need)
		return -ENOBUFS;
	put_feature(out, 0x12 /* FEATURE_GET_TLV_PROPERTIES */, DRIVER_IOCTL_TLV_PROPERTIES);
	/* Only when markers are on: the shim sends markers only where advertised. */
	if (markers)
		put_feature(out + 6, MARKER_FEATURE_TAG, MARKER_CONTROL_CODE);
	return (ssize_t)need;
}

ssize_t
features_tlv_properties(uint8_t *out, size_t cap)
{
	static const char firmware[] = "pcsctap " PCSCTAP_VERSION;
	size_t fw = sizeof(firmware) - 1;
	size_t pos = 0;
	uint32_t max = DRIVER_MAX_APDU_DATA;

	if (cap < 2 + fw + 6)
		return -ENOBUFS;
	/* Properties are tag, length, little-endian value (part 10 §2.6.14). */
	out[pos++] = 0x08;	/* PCSCv2_PART10_PROPERTY_sFirmwareID */
	out[pos++] = (uint8_t)fw;
	memcpy(out + pos, firmware, fw);
	pos += fw;
	out[pos++] = 0x0A;	/* PCSCv2_PART10_PROPERTY_dwMaxAPDUDataSize */
	out[pos++] = 4;
	out[pos++] = (uint8_t)max;
	out[pos++] = (uint8_t)(max >> 8);
	out[pos++] = (uint8_t)(max >> 16);
	out[pos++] = (uint8_t)(max >> 24);
	return (ssize_t)pos;
}
