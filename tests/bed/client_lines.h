/*
 * client_lines.h — what the scripted test clients (step-client,
 * end-client) print: one line per PC/SC call, "STEP rv=0x%08X" and the
 * response bytes on success, never handle values (they differ between
 * runs, and the tests compare a traced run's output with an untraced
 * one's).  Each line is flushed at once, so a process that dies keeps it.
 */
#pragma once

#include <winscard.h>
#include <stddef.h>

/*
 * Prints the line of one call.
 * @param[in] resp the response (printed on success), or NULL
 * @retval 1 when rv is not SCARD_S_SUCCESS, else 0 (for a failure count)
 */
int
client_line(const char *step, LONG rv, const BYTE *resp, DWORD len);

/*
 * Parses up to cap bytes of hexadecimal digits (an APDU on the command line).
 * @retval the number of bytes
 */
size_t
client_parse_hex(const char *hex, BYTE *out, size_t cap);
