/* render.h — human text for trace events (see render.c). */
#pragma once

#include "events.h"

#include <stdbool.h>
#include <stdio.h>

enum colour { C_OFF, C_DIM, C_BOLD, C_RED, C_GREEN, C_YELLOW, C_CYAN };

struct render {
	FILE *out;
	const struct tap_input *in;
	bool colour;
	bool header;	/* start with " process[pid] tTID " */
};

/* Write an ANSI colour when sh->colour is set. */
void paint(struct render *sh, enum colour c);

/* The rest of a line after the time, newline included. */
void render_call(struct render *sh, const struct tap_event *ev);
void render_marker(struct render *sh, const struct tap_event *ev);
void render_wire(struct render *sh, const struct tap_event *ev);

/* One drops row as a text line: "dropped: N events of process[pid] are not in the trace (WALL)". */
void render_drop(struct render *sh, int file, const struct trace_drop *d);

enum drops_format {
	DROPS_TEXT,		/* render_drop() lines */
	DROPS_JSON_LINES,	/* one {"type":"drops",...} object per line */
	DROPS_JSON_ARRAY,	/* the same objects separated by commas */
};

/*
 * The events that the writers dropped (the traces' drops rows), so that
 * every viewer says what a trace lacks.
 * @param[in,out] seen NULL, or per file the rows already written (for
 *                --follow: only new ones are written, and counted)
 * @param[out] total events dropped in the rows written
 * @param[out] err_file the file of a reader error
 * @retval 0, or a reader error
 */
int render_drops(struct render *sh, enum drops_format format, size_t *seen,
		 int64_t *total, int *err_file);

/* "apdu", "power-on", ... */
const char *render_wire_kind(int kind);
