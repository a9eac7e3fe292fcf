/* fn.c — the names of the traced functions (scard_api.def) and their numbers. */
#include "trace.h"

#include <string.h>

static const char *const fn_names[TRACE_FN_MAX + 1] = {
#define SCARD_FN(name, params, args) [TRACE_FN_##name] = #name,
#include "scard_api.def"
#undef SCARD_FN
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
