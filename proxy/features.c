/*
 * features.c — the driver's PC/SC part 10 answers: the feature list
 * (CM_IOCTL_GET_FEATURE_REQUEST) and FEATURE_GET_TLV_PROPERTIES.
 */
#include "config.h"
#include "driver.h"
#include "wire.h"

#include <errno.h>
#include <string.h>

ssize_t
features_answer(bool markers, uint32_t side_token, uint8_t *out, size_t cap)
{
	bool side = markers && side_token;
	size_t need = (1 + markers + side) * FEATURE_TLV_SIZE;

	if (cap < need)
		return -ENOBUFS;
	feature_put(out, 0x12 /* FEATURE_GET_TLV_PROPERTIES */, DRIVER_IOCTL_TLV_PROPERTIES);
	/* Only when markers are on: the shim sends markers only where advertised. */
	if (markers)
		feature_put(out + FEATURE_TLV_SIZE, MARKER_FEATURE_TAG, MARKER_CONTROL_CODE);
	if (side)
		feature_put(out + 2 * FEATURE_TLV_SIZE, SIDE_FEATURE_TAG, side_token);
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
