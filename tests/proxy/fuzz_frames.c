/*
 * fuzz_frames.c — libFuzzer target: the driver's handling of whatever a
 * virtual card sends back (vpcd frames: ATRs, APDU answers), through the
 * real slot code (slot.c, wire/frame.c).
 *
 * The input is the card's whole byte stream, queued on a socketpair
 * before the driver asks; the driver then runs a fixed round of requests
 * (power on + ATR, APDUs of growing size, reset, markers) until the
 * stream ends or the driver drops the card.  Nothing may crash, leak or
 * hang: every read is bounded (timeout 0 here: the stream is complete).
 */
#include "driver.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct slot slot;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t marker[] = { 0x01, 0x06, 0x08, 0x04, 0, 0, 0, 2 };
	static uint8_t apdu[600];
	static uint8_t rx[VPCD_FRAME_MAX];
	uint8_t atr[DRIVER_ATR_MAX];
	struct devopts o;
	int sv[2];
	size_t done = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	/* The card's stream, complete before the first request. */
	while (done < size) {
		ssize_t n = write(sv[1], data + done, size - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	devopts_default(&o);
	o.timeout_ms = 0;
	slot_init_with_fd(&slot, sv[0], &o);
	slot.ignore_unasked = true;
	memset(apdu, 0xA5, sizeof(apdu));
	for (int round = 0; round < 64 && slot.fd >= 0; round++) {
		switch (round % 6) {
		case 0:
			(void)slot_control(&slot, VPCD_CTRL_ON);
			(void)slot_get_atr(&slot, atr, sizeof(atr), true);
			break;
		case 1:
			(void)slot_transmit(&slot, apdu, 5, rx, 258);
			break;
		case 2:
			(void)slot_transmit(&slot, apdu, sizeof(apdu), rx, sizeof(rx));
			break;
		case 3:
			/* An answer larger than the caller's buffer. */
			(void)slot_transmit(&slot, apdu, 4, rx, 2);
			break;
		case 4:
			(void)slot_marker(&slot, marker, sizeof(marker));
			(void)slot_get_atr(&slot, atr, 4, false);
			break;
		default:
			(void)slot_control(&slot, VPCD_CTRL_RESET);
			(void)slot_get_atr(&slot, atr, sizeof(atr), true);
			break;
		}
	}
	slot_close(&slot);
	close(sv[1]);
	return 0;
}
