/*
 * events.h — the merged, filtered stream of calls, markers and wire events
 * of the inputs, in monotonic time order, each attributed to its reader.
 *
 * Memory stays constant in the trace size: the stream holds one row per
 * source (3 per trace file) and the handle map only open card handles.
 */
#pragma once

#include "inputs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tap_kind {
	TAP_CALL = 1u << 0,
	TAP_MARKER = 1u << 1,
	TAP_WIRE = 1u << 2,
	TAP_ALL = TAP_CALL | TAP_MARKER | TAP_WIRE,
};

struct tap_event {
	enum tap_kind kind;
	int file;
	int64_t t_ns;		/* CLOCK_MONOTONIC */
	int64_t wall_ns;
	int64_t id;
	int64_t pid;
	const char *reader;	/* attributed reader (handle map), or NULL */
	const struct trace_call_row *call;	/* one of these three is set */
	const struct trace_marker_row *marker;
	const struct trace_wire_row *wire;
};

/* What to keep; zero fields do not filter. */
struct tap_select {
	unsigned kinds;		/* TAP_* (0: all) */
	int64_t pid;
	const char *reader;
	int64_t session;	/* resolved by tap_stream_open() */
	int fn;
	int64_t since_ns;	/* monotonic, inclusive */
	int64_t until_ns;
	const uint8_t *grep;	/* byte string that the data must contain */
	size_t grep_len;
};

struct tap_stream;

/**
 * Open a merged stream over every file of @p in.
 * @param[in] after NULL, or per source (file * 3 + kind index) the last id
 *            already seen, for --follow
 * @retval 0 success
 * @retval -ENOENT the session does not exist
 * @retval <0 a reader error (see tap_input_fail)
 */
int tap_stream_open(struct tap_stream **out, struct tap_input *in,
		    const struct tap_select *sel, const int64_t *after);

/*
 * The next event.  Its pointers stay valid until the next call.
 * @retval 1 an event, 0 the end, <0 error (*err_file tells which file)
 */
int tap_stream_next(struct tap_stream *s, struct tap_event *ev, int *err_file);

/* Per source, the last id returned (array of 3 * count entries). */
void tap_stream_last_ids(const struct tap_stream *s, int64_t *ids);
void tap_stream_close(struct tap_stream *s);

/*
 * The earliest monotonic time in the traces (0 and *empty set when they
 * hold no call, marker or wire row at all).
 * @retval 0 or a reader error
 */
int tap_input_start(struct tap_input *in, int64_t *t0, bool *empty, int *err_file);

/**
 * tap_input_open(), then fail with "empty trace" (one line,
 * PCSCTAP_EXIT_EMPTY) when the traces hold nothing.  On failure *out is
 * NULL and the inputs are closed.
 * @retval PCSCTAP_EXIT_OK, or the exit status to return
 */
int tap_input_open_nonempty(struct tap_input **out, const char *cmd, char **paths, int n);
