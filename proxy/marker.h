/*
 * marker.h — the pcsctap session marker: encoding and decoding of the
 * marker body that travels shim → driver (SCardControl input) and
 * driver → virtual card (after the framed control byte 05).
 *
 * The byte-level contract is docs/markers.md; this is its one implementation
 * in C, shared by the shim, the driver and `pcsctap card`.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MARKER_VERSION 1

/* vpcd control byte that announces a marker frame (free range 05..FF). */
#define MARKER_VPCD_CONTROL_BYTE 0x05

/* PC/SC part 10 feature tag that the pcsctap driver advertises. */
#define MARKER_FEATURE_TAG 0xA5

/*
 * Vendor control code of the marker feature on pcsc-lite:
 * SCARD_CTL_CODE(0x330000 + MARKER_FEATURE_TAG), the numbering CCID drivers
 * use for part 10 features.  Senders must take the code from the driver's
 * feature answer rather than hard-code it.
 */
#define MARKER_CONTROL_CODE 0x423300A5u

/* Largest encoded body. */
#define MARKER_MAX_BODY 512

enum marker_event {
	MARKER_CONNECT = 0x01,
	MARKER_RECONNECT = 0x02,
	MARKER_DISCONNECT = 0x03,
	MARKER_BEGIN_TRANSACTION = 0x04,
	MARKER_END_TRANSACTION = 0x05,
	MARKER_PROTOCOL = 0x06,		/* sent by the driver: pcscd set the protocol */
};

/* Field tags of the body (tag, length, value; unknown tags are skipped). */
enum marker_tag {
	MARKER_TAG_PID = 0x01,			/* u32 */
	MARKER_TAG_HANDLE = 0x02,		/* u32: the client's SCARDHANDLE */
	MARKER_TAG_PROCESS = 0x03,		/* UTF-8 process name, no NUL */
	MARKER_TAG_SEQ = 0x04,			/* u32, per client (pid + handle), from 1 */
	MARKER_TAG_TIMESTAMP = 0x05,		/* u64: CLOCK_MONOTONIC ns */
	MARKER_TAG_SHARE_MODE = 0x06,		/* u32: SCARD_SHARE_* */
	MARKER_TAG_PREFERRED_PROTOCOLS = 0x07,	/* u32: SCARD_PROTOCOL_* mask */
	MARKER_TAG_ACTIVE_PROTOCOL = 0x08,	/* u32: SCARD_PROTOCOL_* */
	MARKER_TAG_DISPOSITION = 0x09,		/* u32: SCARD_LEAVE_CARD ... (or initialization) */
};

/* Bits of struct marker.present: which fields are set. */
#define MARKER_HAS(tag) (1u << (tag))

struct marker {
	uint8_t version;
	uint8_t event;		/* enum marker_event */
	uint32_t present;	/* MARKER_HAS(tag) bits */
	uint32_t pid;
	uint32_t handle;
	char process[256];	/* NUL-terminated */
	uint32_t seq;
	uint64_t timestamp_ns;
	uint32_t share_mode;
	uint32_t preferred_protocols;
	uint32_t active_protocol;
	uint32_t disposition;
};

/**
 * Encode @p m into @p buf.
 * @retval >0 the number of bytes written
 * @retval -ENOSPC @p len is too small
 * @retval -EINVAL unknown event
 */
ssize_t marker_encode(const struct marker *m, uint8_t *buf, size_t len);

/**
 * Decode a body.  Unknown tags are skipped; a known tag with a wrong
 * length, a truncated field or an unknown version is an error.
 * @retval 0 success
 * @retval -EPROTO malformed body
 * @retval -ENOTSUP version not understood
 */
int marker_decode(struct marker *m, const uint8_t *buf, size_t len);

/* "connect", "disconnect", ...; NULL for an unknown event. */
const char *marker_event_name(uint8_t event);

/*
 * One human line, e.g.
 * "connect pid=123 handle=0x1234 process=opensc-tool seq=1 share=shared ..."
 * @retval as snprintf
 */
int marker_format(const struct marker *m, char *buf, size_t len);
