/*
 * test_fn.c — the function numbers that traces store (calls.fn, table
 * functions) are the ones written here, whatever scard_api.def's
 * expansions do: these numbers are a file format.
 */
#include "trace.h"

#include <criterion/criterion.h>

/* Written out once more on purpose: the one copy that must never follow the table. */
static const struct {
	int fn;
	int stored;
	const char *name;
} stored[] = {
	{ TRACE_FN_SCardEstablishContext, 1, "SCardEstablishContext" },
	{ TRACE_FN_SCardReleaseContext, 2, "SCardReleaseContext" },
	{ TRACE_FN_SCardIsValidContext, 3, "SCardIsValidContext" },
	{ TRACE_FN_SCardConnect, 4, "SCardConnect" },
	{ TRACE_FN_SCardReconnect, 5, "SCardReconnect" },
	{ TRACE_FN_SCardDisconnect, 6, "SCardDisconnect" },
	{ TRACE_FN_SCardBeginTransaction, 7, "SCardBeginTransaction" },
	{ TRACE_FN_SCardEndTransaction, 8, "SCardEndTransaction" },
	{ TRACE_FN_SCardStatus, 9, "SCardStatus" },
	{ TRACE_FN_SCardGetStatusChange, 10, "SCardGetStatusChange" },
	{ TRACE_FN_SCardControl, 11, "SCardControl" },
	{ TRACE_FN_SCardTransmit, 12, "SCardTransmit" },
	{ TRACE_FN_SCardListReaderGroups, 13, "SCardListReaderGroups" },
	{ TRACE_FN_SCardListReaders, 14, "SCardListReaders" },
	{ TRACE_FN_SCardFreeMemory, 15, "SCardFreeMemory" },
	{ TRACE_FN_SCardCancel, 16, "SCardCancel" },
	{ TRACE_FN_SCardGetAttrib, 17, "SCardGetAttrib" },
	{ TRACE_FN_SCardSetAttrib, 18, "SCardSetAttrib" },
};

_Static_assert(TRACE_FN_SCardEstablishContext == 1, "stored function numbers start at 1");
_Static_assert(TRACE_FN_SCardSetAttrib == 18, "stored function numbers never change");
_Static_assert(TRACE_FN_MAX == sizeof(stored) / sizeof(stored[0]),
	       "a new function is appended here and to scard_api.def");

Test(fn, stored_numbers_and_names)
{
	for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
		cr_expect_eq(stored[i].fn, stored[i].stored, "%s", stored[i].name);
		cr_expect_str_eq(trace_fn_name(stored[i].stored), stored[i].name);
		cr_expect_eq(trace_fn_from_name(stored[i].name), stored[i].stored);
		/* The short form ("Connect") that the viewer's filters accept. */
		cr_expect_eq(trace_fn_from_name(stored[i].name + 5), stored[i].stored);
	}
}

Test(fn, outside_the_table)
{
	cr_expect_null(trace_fn_name(TRACE_FN_NONE));
	cr_expect_null(trace_fn_name(TRACE_FN_MAX + 1));
	cr_expect_null(trace_fn_name(-1));
	cr_expect_eq(trace_fn_from_name("pcsc_stringify_error"), 0);
	cr_expect_eq(trace_fn_from_name(""), 0);
}
