/* client_lines.c — see client_lines.h. */
#include "client_lines.h"

#include <stdio.h>

int
client_line(const char *step, LONG rv, const BYTE *resp, DWORD len)
{
	printf("%s rv=0x%08lX", step, (unsigned long)rv);
	if (resp && rv == SCARD_S_SUCCESS) {
		printf(" resp=");
		for (DWORD i = 0; i < len; i++)
			printf("%02X", resp[i]);
	}
	printf("\n");
	fflush(stdout);
	return rv != SCARD_S_SUCCESS;
}

size_t
client_parse_hex(const char *hex, BYTE *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (hex[0] && hex[1] && n < cap && sscanf(hex, "%2x", &v) == 1) {
		out[n++] = (BYTE)v;
		hex += 2;
	}
	return n;
}
