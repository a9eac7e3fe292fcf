/* Unit tests for tools/pcscnames.c. */
#include "pcscnames.h"

#include <criterion/criterion.h>

Test(pcscnames, return_codes)
{
	cr_expect_str_eq(pcsc_rv_name(0), "SCARD_S_SUCCESS");
	cr_expect_str_eq(pcsc_rv_name(0x8010000C), "SCARD_E_NO_SMARTCARD");
	cr_expect_str_eq(pcsc_rv_name(0x80100069), "SCARD_W_REMOVED_CARD");
	cr_expect_str_eq(pcsc_rv_name(0x8010001F), "SCARD_E_UNSUPPORTED_FEATURE");
	cr_expect_str_eq(pcsc_rv_name(0x80100001), "SCARD_F_INTERNAL_ERROR");
	cr_expect_str_eq(pcsc_rv_name(0x8010006F), "SCARD_W_CARD_NOT_AUTHENTICATED");
	/* macOS's 32-bit LONG arrives sign-extended. */
	cr_expect_str_eq(pcsc_rv_name((int64_t)(int32_t)0x8010000A), "SCARD_E_TIMEOUT");
	cr_expect_eq(pcsc_rv_u32((int64_t)(int32_t)0x8010000A), 0x8010000Au);
	cr_expect_null(pcsc_rv_name(0x80100099));
	cr_expect_null(pcsc_rv_name(5));
}

Test(pcscnames, flags)
{
	char buf[128];

	cr_expect_str_eq(pcsc_share_name(2), "SHARED");
	cr_expect_str_eq(pcsc_disposition_name(2), "UNPOWER");
	cr_expect_str_eq(pcsc_scope_name(2), "SYSTEM");
	cr_expect_null(pcsc_share_name(9));
	cr_expect_str_eq(pcsc_protocol_text(3, buf, sizeof(buf)), "T0|T1");
	cr_expect_str_eq(pcsc_protocol_text(0, buf, sizeof(buf)), "UNDEFINED");
	cr_expect_str_eq(pcsc_protocol_text(0x10002, buf, sizeof(buf)), "T1|0x10000");
	cr_expect_str_eq(pcsc_state_text(0x00030122, buf, sizeof(buf)), "CHANGED|PRESENT|INUSE|count=3");
	cr_expect_str_eq(pcsc_state_text(0, buf, sizeof(buf)), "UNAWARE");
	cr_expect_str_eq(pcsc_protocol_text(3, buf, 3), "T0");
}
