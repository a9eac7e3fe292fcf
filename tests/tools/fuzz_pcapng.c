/*
 * fuzz_pcapng.c — libFuzzer target for the pcapng writer (tools/pcapng.c)
 * and the exported-PDU records.  The input is a little program: each step
 * takes an opcode byte and a length byte, then that many bytes, to add an
 * interface (named by the bytes), or write a packet (record built from the
 * bytes, with a comment and flags).  The output must always be a pcapng
 * whose block structure checks, with one block per successful step.
 */
#include "pcapng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *mem = NULL;
	size_t mem_size = 0;
	FILE *f = open_memstream(&mem, &mem_size);
	struct pcapng_writer *w = NULL;
	uint8_t rec[600];
	size_t pos = 0;
	int blocks = 1;

	if (!f)
		return 0;
	if (pcapng_writer_open(&w, f, "fuzz") < 0)
		goto out;
	while (pos + 2 <= size) {
		uint8_t op = data[pos];
		size_t len = data[pos + 1];
		char text[256];

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		memcpy(text, data + pos, len);
		text[len] = '\0';
		if (op % 2 == 0) {
			uint32_t id;

			if (pcapng_add_interface(w, (uint16_t)(op == 0 ? 252 : op), text, &id) == 0)
				blocks++;
		} else {
			int dir = (int)(op % 3) - 1;	/* none, sent, received */
			char dissector[8];
			size_t n;

			snprintf(dissector, sizeof(dissector), "%.*s", (int)(op % 8), text);
			n = exported_pdu_build(rec, sizeof(rec), dissector[0] ? dissector : "iso7816",
					       dir, data + pos, len);
			if (n > sizeof(rec))
				abort();
			if (pcapng_write_packet(w, op >> 4, (int64_t)op << 40, rec, n,
						n + (op & 8 ? len : 0), op & 3, op & 4 ? text : NULL) == 0)
				blocks++;
		}
		pos += len;
	}
	if (pcapng_writer_close(w) < 0)
		abort();
	w = NULL;
	fflush(f);
	if (pcapng_check((const uint8_t *)mem, mem_size) != blocks)
		abort();
out:
	if (w)
		pcapng_writer_close(w);
	fclose(f);
	free(mem);
	return 0;
}
