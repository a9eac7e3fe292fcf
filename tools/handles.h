/*
 * handles.h — which reader a card handle belongs to, learnt from
 * SCardConnect and forgotten at SCardDisconnect.
 */
#pragma once

#include "inputs.h"

struct tap_handles;
struct tap_handles *tap_handles_new(void);
void tap_handles_free(struct tap_handles *h);
/* Feed a call (updates the map); @retval the reader of the call's card, or NULL. */
const char *tap_handles_feed(struct tap_handles *h, int file, const struct trace_call_row *row);
