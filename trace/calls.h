/*
 * calls.h — the `calls` row as one table (calls.def): its kinds, the
 * column count and a descriptor per column for the code that binds and
 * reads it.
 */
#pragma once

#include "trace.h"

#include <stddef.h>
#include <stdint.h>

enum call_col_kind {
	CC_PID,
	CC_INT,
	CC_I64,
	CC_OPT,
	CC_TEXT,
	CC_BLOB,
};

enum {
#define TRACE_CALL_COL(col, since, type, kind, field, bit) CALL_COL_##col,
#include "calls.def"
#undef TRACE_CALL_COL
	CALL_COLS
};

struct call_col {
	const char *name;
	int kind;		/* enum call_col_kind */
	size_t off;		/* of the field in struct trace_call */
	uint32_t bit;		/* CC_OPT: its TRACE_HAS_* bit */
};

/* calls.def as data, in column order. */
extern const struct call_col call_cols[CALL_COLS];

