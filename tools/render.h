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

/* "apdu", "power-on", ... */
const char *render_wire_kind(int kind);
