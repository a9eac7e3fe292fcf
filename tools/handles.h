/*
 * handles.h — which reader a card handle belongs to, learnt from
 * SCardConnect and forgotten at SCardDisconnect.
 */
#pragma once

#include "inputs.h"

struct tap_handles;

/* A map for the calls of @p in. */
struct tap_handles *tap_handles_new(struct tap_input *in);
/* A map for the calls of one trace (file 0), read through @p r. */
struct tap_handles *tap_handles_new_reader(struct trace_reader *r);
void tap_handles_free(struct tap_handles *h);

/**
 * Feed a call (updates the map) and say which reader its card belongs to.
 * A handle first seen after its SCardConnect — a --since or --follow
 * window, a --pid filter — is looked up in the whole trace once, so the
 * attribution never depends on the window.
 * @param[out] reader the reader (valid until the next call), or NULL when
 *             the trace does not say
 * @retval 0, -ENOMEM, or a reader error
 */
int tap_handles_feed(struct tap_handles *h, int file, const struct trace_call_row *row,
		     const char **reader);
