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

/*
 * Where the command data starts and how long it is, when the lengths of a
 * command with data add up exactly (ISO 7816-3 cases 3 and 4, short or
 * extended).  @retval false for anything else, which is redacted whole.
 */
static bool
data_span(const uint8_t *apdu, size_t len, size_t *data, size_t *lc)
{
	if (apdu[4] != 0) {
		/* short: Lc data, then at most a one-byte Le */
		*data = 5;
		*lc = apdu[4];
		return len == 5 + *lc || len == 6 + *lc;
	}
	if (len < 7)
		return false;
	/* extended: 00 Lc-hi Lc-lo data, then at most a two-byte Le */
	*data = 7;
	*lc = (size_t)apdu[5] << 8 | apdu[6];
	return *lc > 0 && (len == 7 + *lc || len == 9 + *lc);
}

int
trace_redact_apdu(const uint8_t *apdu, size_t len, uint8_t **out)
{
	size_t data, lc;
	uint8_t *copy;

	*out = NULL;
	if (len <= 5 || !is_pin_ins(apdu[1]))
		return 0;
	if (!data_span(apdu, len, &data, &lc)) {
		/*
		 * Malformed: the lengths cannot tell where a PIN starts or
		 * ends, so fail closed and hide every byte after the
		 * four-byte header (Lc and Le included).
		 */
		data = 4;
		lc = len - data;
	}
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, apdu, len);
	memset(copy + data, 0xFF, lc);
	*out = copy;
	return 1;
}
