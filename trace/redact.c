/*
 * redact.c — PIN data out of command APDUs before they reach a trace.
 * One rule for both writers of APDUs: the shim (calls.data_in) and the
 * driver's wire view (wire.sent), so that a trace holds no PIN unless
 * the user opted out (pcsctap run --no-redact, shim only).
 */
#include "trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* INS bytes whose command data is a PIN (ISO 7816-4). */
static bool
is_pin_ins(uint8_t ins)
{
	return ins == 0x20 || ins == 0x24 || ins == 0x2C;
}

int
trace_redact_apdu(const uint8_t *apdu, size_t len, uint8_t **out)
{
	size_t data, lc;
	uint8_t *copy;

	*out = NULL;
	if (len <= 5 || !is_pin_ins(apdu[1]))
		return 0;
	if (apdu[4] == 0 && len >= 7) {
		/* extended Lc: 00 hi lo */
		lc = (size_t)apdu[5] << 8 | apdu[6];
		data = 7;
	} else {
		lc = apdu[4];
		data = 5;
	}
	if (data + lc > len)
		lc = len - data;	/* malformed: hide everything after the header */
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, apdu, len);
	memset(copy + data, 0xFF, lc);
	*out = copy;
	return 1;
}
