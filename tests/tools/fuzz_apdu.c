/*
 * fuzz_apdu.c — libFuzzer target for the APDU decoder (tools/apdu.c).
 * Any byte string must parse or be refused without reading outside it,
 * and the formatters must stay inside their (deliberately small) buffers.
 */
#include "apdu.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apdu_command cmd;
	struct apdu_response resp;
	char small[17], big[1024], meaning[8];
	/* A private copy: ASan then sees any read past the input. */
	uint8_t *copy = calloc(1, size ? size : 1);

	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	if (apdu_parse_command(copy, size, &cmd) == 0) {
		if (cmd.ccase != APDU_INVALID && cmd.nc) {
			size_t header = cmd.extended ? 7 : 5;

			if (cmd.data != copy + header || header + cmd.nc > size)
				abort();
		}
		(void)apdu_ins_name(cmd.cla, cmd.ins);
	} else if (size >= 4) {
		abort();
	}
	if (apdu_parse_response(copy, size, &resp) == 0) {
		if (resp.len + 2 != size)
			abort();
		apdu_sw_meaning(resp.sw1, resp.sw2, meaning, sizeof(meaning));
		if (strlen(meaning) >= sizeof(meaning))
			abort();
	}
	apdu_format_command(copy, size, 8, small, sizeof(small));
	apdu_format_command(copy, size, 64, big, sizeof(big));
	apdu_format_response(copy, size, 8, small, sizeof(small));
	apdu_format_response(copy, size, 64, big, sizeof(big));
	if (strlen(small) >= sizeof(small) || strlen(big) >= sizeof(big))
		abort();
	free(copy);
	return 0;
}
