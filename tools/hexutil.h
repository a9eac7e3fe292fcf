/* hexutil.h — hex encoding and decoding of byte strings for the command line. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Write @p len bytes as upper-case hex (no separators) into @p out, which
 * must hold 2 * len + 1 bytes.  @retval out
 */
char *hex_encode(const uint8_t *data, size_t len, char *out);

/*
 * Parse hex digits, ignoring spaces and ':'.
 * @retval >=0 bytes written
 * @retval -EINVAL not hex or an odd number of digits
 * @retval -ENOSPC more than @p cap bytes
 */
ssize_t hex_decode(const char *text, uint8_t *out, size_t cap);
