/*
 * pcscnames.h — names for PC/SC numbers as the trace stores them: return
 * codes, share modes, protocols, dispositions, reader states.
 *
 * The tables are our own rather than <winscard.h>'s macros: a trace may
 * come from another platform (macOS uses 32-bit LONG, so codes arrive
 * sign-extended), and pcsc_stringify_error() gives prose, not names.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* "SCARD_E_NO_SMARTCARD"; NULL for an unknown code.  Any sign extension is ignored. */
const char *pcsc_rv_name(int64_t rv);

/* The code as the 32-bit value people look up: 0x8010000C. */
uint32_t pcsc_rv_u32(int64_t rv);

/* "SHARED", "EXCLUSIVE", "DIRECT"; NULL when unknown. */
const char *pcsc_share_name(int64_t share);

/* "LEAVE", "RESET", "UNPOWER", "EJECT"; NULL when unknown. */
const char *pcsc_disposition_name(int64_t disposition);

/* "USER", "TERMINAL", "SYSTEM"; NULL when unknown. */
const char *pcsc_scope_name(int64_t scope);

/* A protocol mask as "T0|T1", "RAW", "UNDEFINED".  @retval buf */
const char *pcsc_protocol_text(int64_t protocols, char *buf, size_t len);

/* SCARD_STATE_* bits as "PRESENT|INUSE", with the event count.  @retval buf */
const char *pcsc_state_text(uint32_t state, char *buf, size_t len);
