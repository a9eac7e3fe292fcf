/* Unit tests for tools/apdu.c: ISO 7816 cases, names and status words. */
#include "apdu.h"
#include "hexutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <criterion/parameterized.h>
#include <string.h>

/*
 * Inline text, not pointers: Criterion runs each test in a re-executed
 * child, where the parent's string addresses mean nothing.
 */
struct case_vector {
	char hex[64];
	enum apdu_case ccase;
	bool extended;
	uint32_t nc;
	uint32_t ne;
	bool has_le;
};

ParameterizedTestParameters(apdu, cases)
{
	static struct case_vector v[] = {
		{ "00A40400", APDU_CASE_1, false, 0, 0, false },
		{ "00B0000000", APDU_CASE_2, false, 0, 256, true },
		{ "00B0000010", APDU_CASE_2, false, 0, 16, true },
		{ "00A4040002 3F00", APDU_CASE_3, false, 2, 0, false },
		{ "00A4040007 A0000000030000 00", APDU_CASE_4, false, 7, 256, true },
		{ "00A4040007 A0000000030000 20", APDU_CASE_4, false, 7, 32, true },
		{ "00B00000 000000", APDU_CASE_2, true, 0, 65536, true },
		{ "00B00000 000102", APDU_CASE_2, true, 0, 258, true },
		{ "00DA0000 000003 010203", APDU_CASE_3, true, 3, 0, false },
		{ "002A9E9A 000003 010203 0000", APDU_CASE_4, true, 3, 65536, true },
		{ "002A9E9A 000003 010203 0100", APDU_CASE_4, true, 3, 256, true },
		{ "00A4040005 3F00", APDU_INVALID, false, 0, 0, false },
		{ "00B00000 0000", APDU_INVALID, false, 0, 0, false },
		{ "00B00000 000000 00", APDU_INVALID, false, 0, 0, false },
	};

	return cr_make_param_array(struct case_vector, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct case_vector *v, apdu, cases)
{
	uint8_t buf[300];
	ssize_t n = hex_decode(v->hex, buf, sizeof(buf));
	struct apdu_command cmd;

	cr_assert_gt(n, 0);
	cr_assert_eq(apdu_parse_command(buf, (size_t)n, &cmd), 0);
	cr_expect_eq(cmd.ccase, v->ccase, "%s: case %d", v->hex, cmd.ccase);
	if (v->ccase == APDU_INVALID)
		return;
	cr_expect_eq(cmd.extended, v->extended, "%s", v->hex);
	cr_expect_eq(cmd.nc, v->nc, "%s: nc %u", v->hex, cmd.nc);
	cr_expect_eq(cmd.ne, v->ne, "%s: ne %u", v->hex, cmd.ne);
	cr_expect_eq(cmd.has_le, v->has_le, "%s", v->hex);
	if (cmd.nc)
		cr_expect_not_null(cmd.data);
}

Test(apdu, too_short)
{
	struct apdu_command cmd;
	struct apdu_response resp;
	uint8_t b[3] = { 0 };

	cr_expect_eq(apdu_parse_command(b, 3, &cmd), -EINVAL);
	cr_expect_eq(apdu_parse_command(NULL, 0, &cmd), -EINVAL);
	cr_expect_eq(apdu_parse_response(b, 1, &resp), -EINVAL);
	cr_expect_eq(apdu_parse_response(b, 2, &resp), 0);
	cr_expect_eq(resp.len, 0);
	cr_expect_null(resp.data);
}

Test(apdu, ins_names)
{
	cr_expect_str_eq(apdu_ins_name(0x00, 0xA4), "SELECT");
	cr_expect_str_eq(apdu_ins_name(0x00, 0x20), "VERIFY");
	cr_expect_str_eq(apdu_ins_name(0x0C, 0xB0), "READ BINARY");
	cr_expect_str_eq(apdu_ins_name(0x80, 0x50), "INITIALIZE UPDATE");
	cr_expect_str_eq(apdu_ins_name(0x84, 0x82), "EXTERNAL AUTHENTICATE");
	cr_expect_str_eq(apdu_ins_name(0x80, 0xF2), "GET STATUS");
	cr_expect_str_eq(apdu_ins_name(0x80, 0xE6), "INSTALL");
	cr_expect_str_eq(apdu_ins_name(0x84, 0xE4), "DELETE");
	cr_expect_str_eq(apdu_ins_name(0x00, 0xE4), "DELETE FILE");
	cr_expect_str_eq(apdu_ins_name(0xFF, 0xCA), "GET DATA");
	/* An applet's own instruction in a proprietary class has no name. */
	cr_expect_null(apdu_ins_name(0x80, 0x10));
	cr_expect_null(apdu_ins_name(0x00, 0x01));
}

Test(apdu, status_words)
{
	char buf[96];

	cr_expect_str_eq(apdu_sw_meaning(0x90, 0x00, buf, sizeof(buf)), "success");
	cr_expect_str_eq(apdu_sw_meaning(0x6A, 0x82, buf, sizeof(buf)),
			 "error: file or application not found");
	cr_expect_str_eq(apdu_sw_meaning(0x61, 0x10, buf, sizeof(buf)), "16 bytes still available");
	cr_expect_str_eq(apdu_sw_meaning(0x61, 0x00, buf, sizeof(buf)), "256 bytes still available");
	cr_expect_str_eq(apdu_sw_meaning(0x6C, 0x08, buf, sizeof(buf)),
			 "error: wrong Le, 8 bytes available");
	cr_expect_str_eq(apdu_sw_meaning(0x63, 0xC2, buf, sizeof(buf)),
			 "warning: counter 2 (retries left)");
	cr_expect_str_eq(apdu_sw_meaning(0x6E, 0x00, buf, sizeof(buf)), "error: class not supported");
	cr_expect_str_eq(apdu_sw_meaning(0x12, 0x34, buf, sizeof(buf)), "");
	/* Truncation keeps the buffer terminated. */
	cr_expect_str_eq(apdu_sw_meaning(0x90, 0x00, buf, 4), "suc");
}

Test(apdu, format)
{
	uint8_t buf[300];
	char out[256];
	ssize_t n;

	n = hex_decode("00A4040007A000000003000000", buf, sizeof(buf));
	apdu_format_command(buf, (size_t)n, 32, out, sizeof(out));
	cr_expect_str_eq(out, "SELECT 00 A4 04 00 Lc=7 Le=256 A0000000030000");

	n = hex_decode("002A9E9A0000030102030000", buf, sizeof(buf));
	apdu_format_command(buf, (size_t)n, 2, out, sizeof(out));
	cr_expect_str_eq(out, "PERFORM SECURITY OPERATION 00 2A 9E 9A Lc=3 Le=65536 ext 0102...");

	n = hex_decode("6F0A9000", buf, sizeof(buf));
	apdu_format_response(buf, (size_t)n, 32, out, sizeof(out));
	cr_expect_str_eq(out, "9000 success (2 bytes) 6F0A");

	n = hex_decode("6A82", buf, sizeof(buf));
	apdu_format_response(buf, (size_t)n, 32, out, sizeof(out));
	cr_expect_str_eq(out, "6A82 error: file or application not found");

	/* A tiny output buffer is never overrun and the length is as snprintf's. */
	n = hex_decode("00A4040007A000000003000000", buf, sizeof(buf));
	cr_expect_eq(apdu_format_command(buf, (size_t)n, 32, out, 5),
		     (int)strlen("SELECT 00 A4 04 00 Lc=7 Le=256 A0000000030000"));
	cr_expect_str_eq(out, "SELE");
}
