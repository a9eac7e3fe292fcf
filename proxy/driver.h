/*
 * driver.h — internals of libifdpcsctap.so, the pcsctap reader driver.
 *
 * The driver speaks vsmartcard's vpcd wire protocol (wire/wire.h) to a
 * virtual card over TCP.  ifd.c holds the IFDH entry points that pcscd
 * calls; slot.c the per-slot connection and its exchanges; devicename.c
 * the DEVICENAME options; features.c the PC/SC part 10 answers;
 * wiretrace.c the optional wire-level trace.  See docs/driver.md.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

/* vpcd's two slots: PORT and PORT + 1. */
#define DRIVER_SLOTS 2
/* pcscd numbers readers of one driver 0..15 in the upper half of the Lun. */
#define DRIVER_READERS 16
#define DRIVER_DEFAULT_PORT 35963
#define DRIVER_DEFAULT_TIMEOUT_MS 10000
#define DRIVER_DEFAULT_LISTEN "127.0.0.1"
/* Bound for one connection attempt in reversed mode (pcscd polls every 0.4 s). */
#define DRIVER_CONNECT_TIMEOUT_MS 1000
#define DRIVER_ATR_MAX 33

/* The options of one DEVICENAME (docs/driver.md). */
struct devopts {
	char host[256];		/* "" : listen (DEVICENAME /dev/null:PORT) */
	unsigned port;		/* slot 0's port; slot n uses port + n */
	char listen[256];	/* listen address */
	bool markers;		/* forward session markers to the card */
	char trace[1024];	/* "" : no wire trace */
	char name[128];		/* reader name prefix for the trace ("" : derived) */
	int timeout_ms;		/* bound for each exchange with the card */
};

/**
 * Parse a DEVICENAME: "HOST:PORT[:KEY=VALUE]..." with HOST "/dev/null"
 * for listening, or just "HOST" / "" (default port).
 * @param[out] err one human line on failure
 * @retval 0 parsed
 * @retval -EINVAL malformed; @p err says why
 */
int devopts_parse(struct devopts *o, const char *devicename, char *err, size_t errlen);

/* Defaults: listen on 127.0.0.1:35963, markers off, no trace. */
void devopts_default(struct devopts *o);

struct wiretrace;

/* One slot: one TCP connection to one virtual card. */
struct slot {
	pthread_mutex_t lock;	/* serialises every exchange on the connection */
	unsigned long lun;
	unsigned index;		/* 0 or 1 */
	struct devopts opts;
	unsigned port;
	int listen_fd;		/* -1 in reversed mode */
	int fd;			/* -1 while no card is connected */
	char reader[300];	/* for the trace */
	struct wiretrace *trace;	/* NULL: no trace */
	uint8_t atr[DRIVER_ATR_MAX];	/* the card's last ATR */
	size_t atr_len;		/* 0: none since the card connected */
	unsigned generation;	/* counts card connections */
	unsigned reported;	/* the generation last reported present */
	bool present;		/* the last presence report */
	bool ignore_unasked;	/* fuzzing only: the card's bytes are queued ahead */
	uint8_t buf[VPCD_FRAME_MAX];	/* the card's answers */
};

/**
 * Set up @p s and open its listening socket (or try its first connection
 * in reversed mode).
 * @retval 0 ready
 * @retval <0 negative errno (bind failed, ...)
 */
int slot_open(struct slot *s, unsigned long lun, unsigned index, const struct devopts *o);

/* Close the sockets and the trace of @p s (the memory stays with the caller). */
void slot_close(struct slot *s);

/* For tests and fuzzing: use @p fd as the card connection, no listener. */
void slot_init_with_fd(struct slot *s, int fd, const struct devopts *o);

/**
 * Make sure a card is connected: accept a waiting card (listen mode, never
 * blocks) or try to connect (reversed mode, bounded).
 * @retval true a card is connected
 */
bool slot_connect(struct slot *s);

/* Drop the card connection (it may connect again). */
void slot_drop(struct slot *s, const char *why);

/**
 * Send a control byte that the card does not answer (power on/off, reset).
 * @retval 0 sent
 * @retval <0 negative errno; the connection has been dropped
 */
int slot_control(struct slot *s, uint8_t ctrl);

/**
 * Ask for the ATR.
 * @param[in] traced false for pcscd's presence polls (not recorded)
 * @retval >0 ATR length (at most @p cap, never more than 33)
 * @retval <0 negative errno; the connection has been dropped unless the
 *         answer merely did not fit (-ENOBUFS)
 */
ssize_t slot_get_atr(struct slot *s, uint8_t *atr, size_t cap, bool traced);

/**
 * Send an APDU and read the card's answer.
 * @retval >0 answer length
 * @retval -ENOBUFS the answer was longer than @p cap (it was read and discarded)
 * @retval <0 another negative errno; the connection has been dropped
 */
ssize_t slot_transmit(struct slot *s, const uint8_t *apdu, size_t len, uint8_t *rx, size_t cap);

/**
 * Send a marker: the framed control byte 05 and the framed body, in one
 * write.  The card does not answer.
 * @retval 0 sent
 * @retval <0 negative errno
 */
int slot_marker(struct slot *s, const uint8_t *body, size_t len);

/* The marker side channel (sidechannel.c, wire.h): markers on only. */

/**
 * Listen for markers on @p s's socket in @p dir (SIDE_SOCKET_DIR inside
 * pcscd), served by a thread of its own.
 * @retval 0 listening
 * @retval <0 negative errno; logged, the slot works without it
 */
int sidechannel_start(struct slot *s, const char *dir);

/* Stop the thread and remove the socket (before slot_close()). */
void sidechannel_stop(struct slot *s);

/* The token of @p s's side channel; 0 when it has none. */
uint32_t sidechannel_token(const struct slot *s);

/* Part 10 answers (features.c). */

/* Control code of FEATURE_GET_TLV_PROPERTIES (the CCID convention, as vpcd). */
#define DRIVER_IOCTL_TLV_PROPERTIES (0x42000000u + 0x330000u + 0x12u)

/**
 * Answer CM_IOCTL_GET_FEATURE_REQUEST.
 * @param[in] side_token the slot's side channel token, listed with
 *            SIDE_FEATURE_TAG when markers are on (0: none)
 * @retval >=0 bytes written
 * @retval -ENOBUFS @p cap too small
 */
ssize_t features_answer(bool markers, uint32_t side_token, uint8_t *out, size_t cap);

/**
 * Answer FEATURE_GET_TLV_PROPERTIES.
 * @retval >=0 bytes written
 * @retval -ENOBUFS @p cap too small
 */
ssize_t features_tlv_properties(uint8_t *out, size_t cap);

/* Largest command data field (Nc) of an extended APDU in one vpcd frame. */
#define DRIVER_MAX_APDU_DATA (VPCD_FRAME_MAX - 4 - 3 - 2)

/* The wire trace (wiretrace.c).  All of these accept a NULL trace. */
struct wiretrace *wiretrace_open(const char *path);
void wiretrace_close(struct wiretrace *t);
void wiretrace_record(struct wiretrace *t, const char *reader, int kind, int64_t t_start_ns,
		      const uint8_t *sent, size_t sent_len, const uint8_t *received,
		      size_t received_len, const char *detail);

/* Logging through pcscd's debug log when the driver runs inside pcscd. */
enum driver_log_level {
	DRIVER_LOG_DEBUG = 0,
	DRIVER_LOG_INFO = 1,
	DRIVER_LOG_ERROR = 2,
	DRIVER_LOG_CRITICAL = 3,
};

void driver_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
