/*
 * vpcd_frame.h — vsmartcard's vpcd wire framing, shared by the pcsctap
 * driver and `pcsctap card`.
 *
 * Every message is a 2-byte big-endian length followed by that many bytes.
 * A 1-byte payload is a control byte (see enum vpcd_control); anything
 * longer is an APDU or a response.  Frames are written with one system call
 * so that a peer with Nagle and delayed ACKs never stalls on the split
 * length/payload that stock vpcd produces.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VPCD_FRAME_MAX 0xFFFF

enum vpcd_control {
	VPCD_CTRL_OFF = 0x00,
	VPCD_CTRL_ON = 0x01,
	VPCD_CTRL_RESET = 0x02,
	VPCD_CTRL_ATR = 0x04,
	VPCD_CTRL_MARKER = 0x05,
};

/**
 * Send one frame.
 * @retval 0 sent
 * @retval <0 negative errno (-EMSGSIZE when @p len > VPCD_FRAME_MAX, -EPIPE, ...)
 */
int vpcd_frame_write(int fd, const uint8_t *payload, size_t len);

/**
 * Receive one frame into @p buf.
 * @param[in] timeout_ms bound for the whole frame; -1 waits for ever
 * @retval >=0 payload length
 * @retval -ETIMEDOUT no complete frame in time (the stream is then out of step)
 * @retval -ECONNRESET the peer closed (also in mid-frame)
 * @retval -EMSGSIZE the frame is longer than @p cap (its payload is discarded)
 * @retval <0 another negative errno
 */
ssize_t vpcd_frame_read(int fd, uint8_t *buf, size_t cap, int timeout_ms);

/**
 * Receive the card's answer to a request: like vpcd_frame_read(), but in
 * one system call when the frame arrived whole, for the request/answer
 * exchanges of a reader (a card sends nothing unasked, so nothing may
 * follow the answer).
 * @retval -EPROTO bytes beyond the answer frame arrived with it
 * @retval as vpcd_frame_read() otherwise
 */
ssize_t vpcd_frame_read_answer(int fd, uint8_t *buf, size_t cap, int timeout_ms);

/* Turn on TCP_NODELAY (and keep errors quiet: not every fd is TCP). */
void vpcd_socket_tune(int fd);
