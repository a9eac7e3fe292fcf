/*
 * apdu.h — decoding of ISO 7816-4 command and response APDUs for display.
 *
 * Pure functions over byte buffers: no allocation, no I/O, safe on any
 * input (the fuzz target tests/tools/fuzz_apdu.c holds them to that).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The four ISO 7816-3 cases; APDU_INVALID when the lengths do not add up. */
enum apdu_case {
	APDU_INVALID = 0,
	APDU_CASE_1 = 1,	/* header only */
	APDU_CASE_2 = 2,	/* Le */
	APDU_CASE_3 = 3,	/* Lc, data */
	APDU_CASE_4 = 4,	/* Lc, data, Le */
};

struct apdu_command {
	uint8_t cla, ins, p1, p2;
	enum apdu_case ccase;
	bool extended;		/* extended Lc/Le encoding */
	uint32_t nc;		/* data length (Lc) */
	const uint8_t *data;	/* points into the parsed buffer; NULL when nc == 0 */
	uint32_t ne;		/* expected length (Le decoded: 00 -> 256, 0000 -> 65536) */
	bool has_le;
};

struct apdu_response {
	const uint8_t *data;	/* response data without SW1 SW2 */
	size_t len;
	uint8_t sw1, sw2;
};

/**
 * Parse a command APDU.  A buffer of 4 bytes or more whose lengths are
 * inconsistent still yields the header, with ccase APDU_INVALID.
 * @retval 0 parsed (check ccase)
 * @retval -EINVAL shorter than a header
 */
int apdu_parse_command(const uint8_t *buf, size_t len, struct apdu_command *cmd);

/**
 * Parse a response APDU (data then SW1 SW2).
 * @retval 0 parsed
 * @retval -EINVAL shorter than 2 bytes
 */
int apdu_parse_response(const uint8_t *buf, size_t len, struct apdu_response *resp);

/*
 * The instruction's name: GlobalPlatform names for proprietary classes
 * (CLA b8 set, except FF), ISO 7816-4 names for the interindustry classes.
 * @retval a static string, or NULL when unknown
 */
const char *apdu_ins_name(uint8_t cla, uint8_t ins);

/*
 * What a status word means, e.g. "success", "wrong length",
 * "3 bytes still available", "verification failed, 2 retries left".
 * @retval @p buf, always NUL-terminated (empty for an unknown SW)
 */
const char *apdu_sw_meaning(uint8_t sw1, uint8_t sw2, char *buf, size_t len);

/*
 * One human text for a command, e.g.
 * "SELECT 00 A4 04 00 Lc=7 Le=256 A0000000030000" (data shortened to
 * @p max_data bytes, "..." when cut).  @retval as snprintf
 */
int apdu_format_command(const uint8_t *buf, size_t len, size_t max_data,
			char *out, size_t outlen);

/* "9000 success 6F10..." style text for a response.  @retval as snprintf */
int apdu_format_response(const uint8_t *buf, size_t len, size_t max_data,
			 char *out, size_t outlen);
