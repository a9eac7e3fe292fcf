/*
 * wire.h — the pcsctap wire protocol, in both directions: vsmartcard's
 * vpcd framing between a reader driver and a virtual card, the session
 * marker body (shim -> driver as SCardControl input, driver -> card after
 * the framed control byte 05), and the PC/SC part 10 feature list through
 * which the driver advertises markers.
 *
 * The byte-level contract is docs/markers.md; this is its one
 * implementation in C, shared by the driver (proxy/), the shim and the
 * tools (`pcsctap card`, the trace renderers).  No dependencies: it is
 * built first.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------------- */
/* vpcd framing                                                           */
/* ---------------------------------------------------------------------- */

/*
 * Every message is a 2-byte big-endian length followed by that many bytes.
 * A 1-byte payload is a control byte (enum vpcd_control); anything longer
 * is an APDU or a response.  Frames are written with one system call so
 * that a peer with Nagle and delayed ACKs never stalls on the split
 * length/payload that stock vpcd produces.
 */
#define VPCD_FRAME_MAX 0xFFFF

enum vpcd_control {
	VPCD_CTRL_OFF = 0x00,
	VPCD_CTRL_ON = 0x01,
	VPCD_CTRL_RESET = 0x02,
	VPCD_CTRL_ATR = 0x04,
	/* Announces that a marker body follows in the next frame (the free
	 * range is 05..FF). */
	VPCD_CTRL_MARKER = 0x05,
};

/* One payload of a vpcd_frames_write(). */
struct vpcd_payload {
	const uint8_t *data;
	size_t len;
};

/**
 * Send @p n frames in one system call (as one TCP segment when they fit).
 * @retval 0 sent
 * @retval <0 negative errno (-EMSGSIZE when a payload is longer than
 *         VPCD_FRAME_MAX, -EINVAL for more than 8 frames, -EPIPE, ...)
 */
int vpcd_frames_write(int fd, const struct vpcd_payload *frames, size_t n);

/* One frame: vpcd_frames_write() of one payload. */
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

/* ---------------------------------------------------------------------- */
/* The marker body                                                        */
/* ---------------------------------------------------------------------- */

#define MARKER_VERSION 1

/* PC/SC part 10 feature tag that the pcsctap driver advertises. */
#define MARKER_FEATURE_TAG 0xA5

/*
 * Vendor control code of the marker feature on pcsc-lite:
 * SCARD_CTL_CODE(0x330000 + MARKER_FEATURE_TAG), the numbering CCID drivers
 * use for part 10 features.  Senders must take the code from the driver's
 * feature answer rather than hard-code it.
 */
#define MARKER_CONTROL_CODE 0x423300A5u

/*
 * Second pcsctap entry of the feature list (markers on only): its 4-byte
 * value is not a control code but the token of the slot's side channel
 * (below), which proves that a side channel belongs to this reader.
 */
#define SIDE_FEATURE_TAG 0xA6

/* Largest encoded body. */
#define MARKER_MAX_BODY 512

enum marker_event {
	MARKER_CONNECT = 0x01,
	MARKER_RECONNECT = 0x02,
	MARKER_DISCONNECT = 0x03,
	MARKER_BEGIN_TRANSACTION = 0x04,
	MARKER_END_TRANSACTION = 0x05,
	MARKER_PROTOCOL = 0x06,		/* sent by the driver: pcscd set the protocol */
	/*
	 * Occupancy, sent by the driver from pcscd's published reader state
	 * (every client, traced or not; proxy/occupancy.c).
	 */
	MARKER_READER_IN_USE = 0x07,	/* the first handle connected */
	MARKER_READER_EXCLUSIVE = 0x08,	/* a handle holds the reader exclusively */
	MARKER_READER_SHARED = 0x09,	/* exclusive -> shared again */
	MARKER_READER_FREE = 0x0A,	/* the last handle is gone */
	MARKER_EVENT_LAST = MARKER_READER_FREE,
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
	MARKER_TAG_HANDLES = 0x0A,		/* u32: connected handles pcscd publishes */
	MARKER_TAG_LAST = MARKER_TAG_HANDLES,
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
	uint32_t handles;
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

/* ---------------------------------------------------------------------- */
/* PC/SC part 10 feature list (CM_IOCTL_GET_FEATURE_REQUEST)              */
/* ---------------------------------------------------------------------- */

/* One entry: tag u8, length u8 (always 4), control code u32 big-endian. */
#define FEATURE_TLV_SIZE 6

/* Write one entry at @p p (FEATURE_TLV_SIZE bytes). */
void feature_put(uint8_t *p, uint8_t tag, uint32_t code);

/**
 * Find @p tag in a feature list of @p len bytes.
 * @retval the control code, or 0 when the list does not hold the tag
 *         (entries that run past the end, or whose length is not 4, do not count)
 */
uint32_t feature_find(const uint8_t *list, size_t len, uint8_t tag);

/* ---------------------------------------------------------------------- */
/* The marker side channel (docs/markers.md section 2)                    */
/* ---------------------------------------------------------------------- */

/*
 * pcscd refuses SCardControl (markers and feature discovery) while another
 * handle holds a transaction.  With markers on, the driver therefore also
 * listens on a Unix SOCK_SEQPACKET socket per slot, in pcscd's socket
 * directory (the directory of PCSCLITE_CSOCK_NAME for a client), named
 * after the last two words of the reader name that pcscd gives the slot
 * ("... 01 00" -> "pcsctap-01-00").  One request per connection, one
 * answer; the driver writes a marker between two exchanges of the slot,
 * under the slot's lock, and only for the peer's own pid (SO_PEERCRED).
 */
#define SIDE_SOCKET_DIR "/run/pcscd"
#define SIDE_SOCKET_PREFIX "pcsctap-"

enum side_op {
	/* -> SIDE_OK, marker code u32, token u32, ATR (0..33 bytes) */
	SIDE_HELLO = 0x01,
	/* token u32, marker body -> status */
	SIDE_MARKER = 0x02,
};

enum side_status {
	SIDE_OK = 0x00,
	SIDE_MALFORMED = 0x01,		/* bad request or marker body */
	SIDE_NOT_YOURS = 0x02,		/* the body's pid is not the peer's */
	SIDE_WRONG_TOKEN = 0x03,	/* another slot (or pcscd run) than the client asked for */
	SIDE_NO_CARD = 0x04,		/* the write to the card failed */
};

/* op + token + body */
#define SIDE_REQUEST_MAX (1 + 4 + MARKER_MAX_BODY)
/* status + code + token + ATR */
#define SIDE_ANSWER_MAX (1 + 4 + 4 + 33)
/* Bound for one request and its answer, both ends. */
#define SIDE_TIMEOUT_MS 1000

/**
 * The socket file name of slot @p slot of reader number @p reader
 * ("pcsctap-XX-YY").
 * @retval as snprintf
 */
int side_socket_name(char *out, size_t cap, unsigned reader, unsigned slot);

/**
 * The reader and slot numbers at the end of a reader name that pcscd
 * made ("NAME XX YY").
 * @retval 0 found
 * @retval -EINVAL the name does not end that way
 */
int side_reader_numbers(const char *reader_name, unsigned *reader, unsigned *slot);

/* Big-endian u32 at @p p (feature list entries, side channel messages). */
void wire_put_u32(uint8_t *p, uint32_t v);
uint32_t wire_get_u32(const uint8_t *p);
