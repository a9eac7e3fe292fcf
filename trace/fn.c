#include "trace.h"

#include <string.h>

static const char *const fn_names[TRACE_FN_MAX + 1] = {
	[TRACE_FN_SCardEstablishContext] = "SCardEstablishContext",
	[TRACE_FN_SCardReleaseContext] = "SCardReleaseContext",
	[TRACE_FN_SCardIsValidContext] = "SCardIsValidContext",
	[TRACE_FN_SCardConnect] = "SCardConnect",
	[TRACE_FN_SCardReconnect] = "SCardReconnect",
	[TRACE_FN_SCardDisconnect] = "SCardDisconnect",
	[TRACE_FN_SCardBeginTransaction] = "SCardBeginTransaction",
	[TRACE_FN_SCardEndTransaction] = "SCardEndTransaction",
	[TRACE_FN_SCardStatus] = "SCardStatus",
	[TRACE_FN_SCardGetStatusChange] = "SCardGetStatusChange",
	[TRACE_FN_SCardControl] = "SCardControl",
	[TRACE_FN_SCardTransmit] = "SCardTransmit",
	[TRACE_FN_SCardListReaderGroups] = "SCardListReaderGroups",
	[TRACE_FN_SCardListReaders] = "SCardListReaders",
	[TRACE_FN_SCardFreeMemory] = "SCardFreeMemory",
	[TRACE_FN_SCardCancel] = "SCardCancel",
	[TRACE_FN_SCardGetAttrib] = "SCardGetAttrib",
	[TRACE_FN_SCardSetAttrib] = "SCardSetAttrib",
};

const char *
trace_fn_name(int fn)
{
	if (fn < 1 || fn > TRACE_FN_MAX)
		return NULL;
	return fn_names[fn];
}

int
trace_fn_from_name(const char *name)
{
	for (int fn = 1; fn <= TRACE_FN_MAX; fn++) {
		/* "Connect" is accepted for "SCardConnect". */
		if (!strcmp(name, fn_names[fn]) || !strcmp(name, fn_names[fn] + 5))
			return fn;
	}
	return 0;
}
