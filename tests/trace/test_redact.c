/*
 * test_redact.c — the PIN redaction rule shared by the shim and the
 * driver: which commands it hides, what it keeps, and that it fails
 * closed (no memory for the copy: the caller is told to keep no data).
 * Linked with -Wl,--wrap=malloc so that one allocation can be made to fail.
 */
#include "trace.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

static bool fail_next_malloc;

void *
__wrap_malloc(size_t size)
{
	if (fail_next_malloc) {
		fail_next_malloc = false;
		return NULL;
	}
	return __real_malloc(size);
}

struct case_ {
	const char *name;
	uint8_t apdu[16];
	size_t len;
	int expect;		/* trace_redact_apdu's result */
	uint8_t want[16];	/* the redacted copy when expect == 1 */
};

static struct case_ cases[] = {
	{ "VERIFY", { 0x00, 0x20, 0x00, 0x81, 0x04, 0x31, 0x32, 0x33, 0x34 }, 9, 1,
	  { 0x00, 0x20, 0x00, 0x81, 0x04, 0xFF, 0xFF, 0xFF, 0xFF } },
	{ "CHANGE REFERENCE DATA, Le kept", { 0x00, 0x24, 0x00, 0x01, 0x02, 0x31, 0x32, 0x00 }, 8, 1,
	  { 0x00, 0x24, 0x00, 0x01, 0x02, 0xFF, 0xFF, 0x00 } },
	{ "RESET RETRY COUNTER, extended Lc", { 0x00, 0x2C, 0x00, 0x01, 0x00, 0x00, 0x02, 0x39, 0x38 }, 9, 1,
	  { 0x00, 0x2C, 0x00, 0x01, 0x00, 0x00, 0x02, 0xFF, 0xFF } },
	{ "Lc beyond the end hides everything after the header", { 0x80, 0x20, 0x00, 0x00, 0x09, 0x31, 0x32 }, 7, 1,
	  { 0x80, 0x20, 0x00, 0x00, 0x09, 0xFF, 0xFF } },
	{ "VERIFY without data (retry counter query)", { 0x00, 0x20, 0x00, 0x81 }, 4, 0, { 0 } },
	{ "SELECT", { 0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00 }, 7, 0, { 0 } },
};

ParameterizedTestParameters(redact, rule)
{
	return cr_make_param_array(struct case_, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct case_ *c, redact, rule)
{
	uint8_t *out = (uint8_t *)1;
	int rc = trace_redact_apdu(c->apdu, c->len, &out);

	cr_assert_eq(rc, c->expect, "%s", c->name);
	if (rc == 1) {
		cr_assert_arr_eq(out, c->want, c->len, "%s", c->name);
		free(out);
	} else {
		cr_assert_null(out, "%s", c->name);
	}
}

Test(redact, fails_closed_without_memory)
{
	static const uint8_t verify[] = { 0x00, 0x20, 0x00, 0x81, 0x02, 0x31, 0x32 };
	uint8_t *out = (uint8_t *)1;

	fail_next_malloc = true;
	cr_assert_eq(trace_redact_apdu(verify, sizeof(verify), &out), -ENOMEM);
	cr_assert_null(out);
}
