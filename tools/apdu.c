#include "apdu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
apdu_parse_command(const uint8_t *buf, size_t len, struct apdu_command *cmd)
{
	size_t lc;

	memset(cmd, 0, sizeof(*cmd));
	if (!buf || len < 4)
		return -EINVAL;
	cmd->cla = buf[0];
	cmd->ins = buf[1];
	cmd->p1 = buf[2];
	cmd->p2 = buf[3];
	if (len == 4) {
		cmd->ccase = APDU_CASE_1;
		return 0;
	}
	if (len == 5) {
		cmd->ccase = APDU_CASE_2;
		cmd->has_le = true;
		cmd->ne = buf[4] ? buf[4] : 256;
		return 0;
	}
	if (buf[4] != 0) {
		/* Short Lc: the rest is data, with one more byte for Le. */
		lc = buf[4];
		if (len == 5 + lc) {
			cmd->ccase = APDU_CASE_3;
		} else if (len == 6 + lc) {
			cmd->ccase = APDU_CASE_4;
			cmd->has_le = true;
			cmd->ne = buf[len - 1] ? buf[len - 1] : 256;
		} else {
			return 0;
		}
		cmd->nc = (uint32_t)lc;
		cmd->data = buf + 5;
		return 0;
	}
	/* A 00 byte after the header starts an extended length. */
	if (len < 7)
		return 0;
	cmd->extended = true;
	if (len == 7) {
		unsigned le = (unsigned)buf[5] << 8 | buf[6];

		cmd->ccase = APDU_CASE_2;
		cmd->has_le = true;
		cmd->ne = le ? le : 65536;
		return 0;
	}
	lc = (size_t)buf[5] << 8 | buf[6];
	if (lc == 0)
		return 0;
	if (len == 7 + lc) {
		cmd->ccase = APDU_CASE_3;
	} else if (len == 9 + lc) {
		unsigned le = (unsigned)buf[len - 2] << 8 | buf[len - 1];

		cmd->ccase = APDU_CASE_4;
		cmd->has_le = true;
		cmd->ne = le ? le : 65536;
	} else {
		return 0;
	}
	cmd->nc = (uint32_t)lc;
	cmd->data = buf + 7;
	return 0;
}

int
apdu_parse_response(const uint8_t *buf, size_t len, struct apdu_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (!buf || len < 2)
		return -EINVAL;
	resp->data = len > 2 ? buf : NULL;
	resp->len = len - 2;
	resp->sw1 = buf[len - 2];
	resp->sw2 = buf[len - 1];
	return 0;
}

/* ISO/IEC 7816-4:2020 table 4 (interindustry commands). */
static const char *const iso_ins[256] = {
	[0x04] = "DEACTIVATE FILE",
	[0x0C] = "ERASE RECORD",
	[0x0E] = "ERASE BINARY",
	[0x0F] = "ERASE BINARY",
	[0x10] = "PERFORM SCQL OPERATION",
	[0x12] = "PERFORM TRANSACTION OPERATION",
	[0x14] = "PERFORM USER OPERATION",
	[0x20] = "VERIFY",
	[0x21] = "VERIFY",
	[0x22] = "MANAGE SECURITY ENVIRONMENT",
	[0x24] = "CHANGE REFERENCE DATA",
	[0x26] = "DISABLE VERIFICATION REQUIREMENT",
	[0x28] = "ENABLE VERIFICATION REQUIREMENT",
	[0x2A] = "PERFORM SECURITY OPERATION",
	[0x2C] = "RESET RETRY COUNTER",
	[0x44] = "ACTIVATE FILE",
	[0x46] = "GENERATE ASYMMETRIC KEY PAIR",
	[0x70] = "MANAGE CHANNEL",
	[0x82] = "EXTERNAL AUTHENTICATE",
	[0x84] = "GET CHALLENGE",
	[0x86] = "GENERAL AUTHENTICATE",
	[0x87] = "GENERAL AUTHENTICATE",
	[0x88] = "INTERNAL AUTHENTICATE",
	[0xA0] = "SEARCH BINARY",
	[0xA1] = "SEARCH BINARY",
	[0xA2] = "SEARCH RECORD",
	[0xA4] = "SELECT",
	[0xB0] = "READ BINARY",
	[0xB1] = "READ BINARY",
	[0xB2] = "READ RECORD",
	[0xB3] = "READ RECORD",
	[0xC0] = "GET RESPONSE",
	[0xC2] = "ENVELOPE",
	[0xC3] = "ENVELOPE",
	[0xCA] = "GET DATA",
	[0xCB] = "GET DATA",
	[0xCC] = "GET NEXT DATA",
	[0xCD] = "GET NEXT DATA",
	[0xD0] = "WRITE BINARY",
	[0xD1] = "WRITE BINARY",
	[0xD2] = "WRITE RECORD",
	[0xD6] = "UPDATE BINARY",
	[0xD7] = "UPDATE BINARY",
	[0xDA] = "PUT DATA",
	[0xDB] = "PUT DATA",
	[0xDC] = "UPDATE RECORD",
	[0xDD] = "UPDATE RECORD",
	[0xE0] = "CREATE FILE",
	[0xE2] = "APPEND RECORD",
	[0xE4] = "DELETE FILE",
	[0xE6] = "TERMINATE DF",
	[0xE8] = "TERMINATE EF",
	[0xFE] = "TERMINATE CARD USAGE",
};

/* GlobalPlatform Card Specification 2.3, table 11-1 (proprietary class). */
static const char *const gp_ins[256] = {
	[0x2A] = "PERFORM SECURITY OPERATION",
	[0x50] = "INITIALIZE UPDATE",
	[0x70] = "MANAGE CHANNEL",
	[0x78] = "END R-MAC SESSION",
	[0x7A] = "BEGIN R-MAC SESSION",
	[0x82] = "EXTERNAL AUTHENTICATE",
	[0xA4] = "SELECT",
	[0xC0] = "GET RESPONSE",
	[0xCA] = "GET DATA",
	[0xCB] = "GET DATA",
	[0xD8] = "PUT KEY",
	[0xE2] = "STORE DATA",
	[0xE4] = "DELETE",
	[0xE6] = "INSTALL",
	[0xE8] = "LOAD",
	[0xF0] = "SET STATUS",
	[0xF2] = "GET STATUS",
};

const char *
apdu_ins_name(uint8_t cla, uint8_t ins)
{
	/*
	 * A proprietary class gives the INS no interindustry meaning: naming
	 * an applet's own 80 xx command after ISO would mislead, so only the
	 * GlobalPlatform card manager's commands are named there.
	 */
	if ((cla & 0x80) && cla != 0xFF)
		return gp_ins[ins];
	return iso_ins[ins];
}

struct sw_entry {
	uint16_t sw;
	const char *text;
};

/* ISO/IEC 7816-4 section 5.6, plus GlobalPlatform's additions. */
static const struct sw_entry sw_table[] = {
	{ 0x9000, "success" },
	{ 0x6200, "warning: no information given, state unchanged" },
	{ 0x6281, "warning: part of returned data may be corrupted" },
	{ 0x6282, "warning: end of file reached before reading Ne bytes" },
	{ 0x6283, "warning: selected file deactivated" },
	{ 0x6284, "warning: file control information not formatted" },
	{ 0x6285, "warning: selected file in termination state" },
	{ 0x6286, "warning: no input data available from a sensor" },
	{ 0x6300, "warning: no information given, state changed" },
	{ 0x6310, "warning: more data available" },
	{ 0x6381, "warning: file filled up by the last write" },
	{ 0x6400, "error: execution error, state unchanged" },
	{ 0x6401, "error: immediate response required by the card" },
	{ 0x6500, "error: execution error, state changed" },
	{ 0x6581, "error: memory failure" },
	{ 0x6700, "error: wrong length" },
	{ 0x6800, "error: functions in CLA not supported" },
	{ 0x6881, "error: logical channel not supported" },
	{ 0x6882, "error: secure messaging not supported" },
	{ 0x6883, "error: last command of the chain expected" },
	{ 0x6884, "error: command chaining not supported" },
	{ 0x6900, "error: command not allowed" },
	{ 0x6981, "error: command incompatible with file structure" },
	{ 0x6982, "error: security status not satisfied" },
	{ 0x6983, "error: authentication method blocked" },
	{ 0x6984, "error: reference data not usable" },
	{ 0x6985, "error: conditions of use not satisfied" },
	{ 0x6986, "error: command not allowed (no current EF)" },
	{ 0x6987, "error: expected secure messaging data objects missing" },
	{ 0x6988, "error: incorrect secure messaging data objects" },
	{ 0x6A00, "error: wrong parameters P1-P2" },
	{ 0x6A80, "error: incorrect parameters in the command data field" },
	{ 0x6A81, "error: function not supported" },
	{ 0x6A82, "error: file or application not found" },
	{ 0x6A83, "error: record not found" },
	{ 0x6A84, "error: not enough memory space in the file" },
	{ 0x6A85, "error: Nc inconsistent with TLV structure" },
	{ 0x6A86, "error: incorrect parameters P1-P2" },
	{ 0x6A87, "error: Nc inconsistent with parameters P1-P2" },
	{ 0x6A88, "error: referenced data or reference data not found" },
	{ 0x6A89, "error: file already exists" },
	{ 0x6A8A, "error: DF name already exists" },
	{ 0x6B00, "error: wrong parameters P1-P2" },
	{ 0x6D00, "error: instruction code not supported or invalid" },
	{ 0x6E00, "error: class not supported" },
	{ 0x6F00, "error: no precise diagnosis" },
};

const char *
apdu_sw_meaning(uint8_t sw1, uint8_t sw2, char *buf, size_t len)
{
	uint16_t sw = (uint16_t)(sw1 << 8 | sw2);

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(sw_table) / sizeof(sw_table[0]); i++) {
		if (sw_table[i].sw == sw) {
			snprintf(buf, len, "%s", sw_table[i].text);
			return buf;
		}
	}
	/* The status words that carry a number in SW2. */
	if (sw1 == 0x61)
		snprintf(buf, len, "%u bytes still available", sw2 ? sw2 : 256u);
	else if (sw1 == 0x6C)
		snprintf(buf, len, "error: wrong Le, %u bytes available", sw2 ? sw2 : 256u);
	else if (sw1 == 0x63 && (sw2 & 0xF0) == 0xC0)
		snprintf(buf, len, "warning: counter %u (retries left)", sw2 & 0x0F);
	else if (sw1 == 0x62 && sw2 >= 0x02 && sw2 <= 0x80)
		snprintf(buf, len, "warning: %u query bytes from the card", sw2);
	else if (sw1 == 0x64 && sw2 >= 0x02 && sw2 <= 0x80)
		snprintf(buf, len, "error: %u query bytes from the card", sw2);
	else if (sw1 == 0x62 || sw1 == 0x63)
		snprintf(buf, len, "warning");
	else if (sw1 >= 0x64 && sw1 <= 0x6F)
		snprintf(buf, len, "error");
	return buf;
}

/* Append to a bounded buffer the way snprintf counts: pos may pass len. */
static void
append(char *out, size_t outlen, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
append(char *out, size_t outlen, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*pos < outlen ? out + *pos : NULL,
		      *pos < outlen ? outlen - *pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

static void
append_hex(char *out, size_t outlen, size_t *pos, const uint8_t *data,
	   size_t len, size_t max)
{
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++)
		append(out, outlen, pos, "%02X", data[i]);
	if (n < len)
		append(out, outlen, pos, "...");
}

int
apdu_format_command(const uint8_t *buf, size_t len, size_t max_data,
		    char *out, size_t outlen)
{
	struct apdu_command cmd;
	const char *name;
	size_t pos = 0;

	if (outlen)
		out[0] = '\0';
	if (apdu_parse_command(buf, len, &cmd) < 0) {
		append(out, outlen, &pos, "short command ");
		append_hex(out, outlen, &pos, buf, buf ? len : 0, max_data);
		return (int)pos;
	}
	name = apdu_ins_name(cmd.cla, cmd.ins);
	if (name)
		append(out, outlen, &pos, "%s ", name);
	append(out, outlen, &pos, "%02X %02X %02X %02X", cmd.cla, cmd.ins, cmd.p1, cmd.p2);
	if (cmd.ccase == APDU_INVALID) {
		append(out, outlen, &pos, " bad lengths ");
		append_hex(out, outlen, &pos, buf + 4, len - 4, max_data);
		return (int)pos;
	}
	if (cmd.nc)
		append(out, outlen, &pos, " Lc=%u", cmd.nc);
	if (cmd.has_le)
		append(out, outlen, &pos, " Le=%u", cmd.ne);
	if (cmd.extended)
		append(out, outlen, &pos, " ext");
	if (cmd.nc) {
		append(out, outlen, &pos, " ");
		append_hex(out, outlen, &pos, cmd.data, cmd.nc, max_data);
	}
	return (int)pos;
}

int
apdu_format_response(const uint8_t *buf, size_t len, size_t max_data,
		     char *out, size_t outlen)
{
	struct apdu_response resp;
	char meaning[96];
	size_t pos = 0;

	if (outlen)
		out[0] = '\0';
	if (apdu_parse_response(buf, len, &resp) < 0) {
		append(out, outlen, &pos, "short response ");
		append_hex(out, outlen, &pos, buf, buf ? len : 0, max_data);
		return (int)pos;
	}
	apdu_sw_meaning(resp.sw1, resp.sw2, meaning, sizeof(meaning));
	append(out, outlen, &pos, "%02X%02X", resp.sw1, resp.sw2);
	if (meaning[0])
		append(out, outlen, &pos, " %s", meaning);
	if (resp.len) {
		append(out, outlen, &pos, " (%zu bytes) ", resp.len);
		append_hex(out, outlen, &pos, resp.data, resp.len, max_data);
	}
	return (int)pos;
}
