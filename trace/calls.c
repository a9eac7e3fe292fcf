/*
 * calls.c — calls.def as data (see calls.h).
 */
#include "calls.h"

const struct call_col call_cols[CALL_COLS] = {
#define TRACE_CALL_COL(col, since, type, kind, field, bit) \
	{ #col, kind, offsetof(struct trace_call, field), bit },
#include "calls.def"
#undef TRACE_CALL_COL
};
