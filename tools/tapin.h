/*
 * tapin.h — what show, sessions, stats and export share: opening one or
 * more traces with one clear error line and a documented exit code, process
 * names, card-handle → reader attribution, and a merged, filtered stream of
 * calls, markers and wire events ordered by monotonic time.
 *
 * Memory stays constant in the trace size: the stream holds one row per
 * source (3 per trace file) and the handle map only open card handles.
 */
#pragma once

#include "trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TAP_MAX_FILES 16

struct tap_input;

/**
 * Open the traces named in @p paths (or $PCSCTAP_TRACE when @p n is 0).
 * On failure one line "pcsctap CMD: PATH: reason" is printed on stderr.
 * @param[in] cmd the subcommand, for messages
 * @retval PCSCTAP_EXIT_OK, or the exit status to return
 */
int tap_input_open(struct tap_input **out, const char *cmd, char **paths, int n);
void tap_input_close(struct tap_input *in);
int tap_input_count(const struct tap_input *in);
struct trace_reader *tap_input_reader(struct tap_input *in, int file);
const char *tap_input_path(const struct tap_input *in, int file);

/* The base name of the process's executable, or "?" when not recorded. */
const char *tap_process_name(const struct tap_input *in, int file, int64_t pid);

/* The role the process recorded ("shim", "driver"), or NULL. */
const char *tap_process_role(const struct tap_input *in, int file, int64_t pid);

/*
 * Report a reader failure during iteration (one line) and return the exit
 * status for it.
 */
int tap_input_fail(struct tap_input *in, const char *cmd, int file, int rc);

/* ---------------------------------------------------------------------- */

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

/* ---------------------------------------------------------------------- */
/* Card handle → reader, learnt from SCardConnect, forgotten at Disconnect. */

struct tap_handles;
struct tap_handles *tap_handles_new(void);
void tap_handles_free(struct tap_handles *h);
/* Feed a call (updates the map); @retval the reader of the call's card, or NULL. */
const char *tap_handles_feed(struct tap_handles *h, int file, const struct trace_call_row *row);
