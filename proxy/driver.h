/*
 * driver.h — internals of libifdpcsctap.so, the pcsctap reader driver.
 *
 * The driver speaks vsmartcard's vpcd wire protocol (wire/wire.h) to a
 * virtual card over TCP.  ifd.c holds the IFDH entry points that pcscd
 * calls; slot.c the per-slot connection and its exchanges; presence.c
 * the event-driven wait for cards arriving and leaving; devicename.c the
 * DEVICENAME options; features.c the PC/SC part 10 answers;
 * sidechannel.c the marker side channel; occupancy.c the occupancy
 * markers (pcscd's published reader state, every client);
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
/*
 * Bound for a new card's handshake: one connection attempt in reversed
 * mode, and the card's first ATR.  A card that has not answered yet must
 * not hold up the reader (docs/security.md).
 */
#define DRIVER_HANDSHAKE_MS 1000
/* pcscd's own presence poll period (PCSCLITE_STATUS_POLL_RATE). */
#define DRIVER_POLL_PERIOD_MS 400
/* New connections whose first ATR is awaited at once, per slot. */
#define DRIVER_PENDING_MAX 4
/* TCP keepalive of a connected card: idle and probe interval (s), probes. */
#define DRIVER_KEEPALIVE_IDLE_S 1
#define DRIVER_KEEPALIVE_INTERVAL_S 1
#define DRIVER_KEEPALIVE_PROBES 3
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
	bool presence_poll;	/* presence=poll: a GET ATR per pcscd poll, as vpcd */
};

/**
 * Parse a DEVICENAME: "HOST:PORT[:KEY=VALUE]..." with HOST "/dev/null"
 * for listening, or just "HOST" / "" (default port).
 * @param[out] err one human line on failure
 * @retval 0 parsed
 * @retval -EINVAL malformed; @p err says why
 */
int devopts_parse(struct devopts *o, const char *devicename, char *err, size_t errlen);

/* Defaults: listen on 127.0.0.1:35963, markers off, no trace, presence=event. */
void devopts_default(struct devopts *o);

struct wiretrace;
struct occupancy;

/* A new connection whose first ATR is awaited (presence.c). */
struct pending {
	int fd;			/* -1: unused */
	bool connecting;	/* reversed mode: the connect has not completed */
	int64_t deadline_ns;	/* end of its handshake */
};

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
	int wake_fd;		/* eventfd: wakes presence_wait(); -1 in tests */
	/* Atomics of presence.c: wait_seq is odd during a presence_wait()
	 * (counted at entry and exit), stop_for the wait_seq that a stop ends. */
	unsigned wait_seq;
	unsigned stop_for;
	bool powered;		/* atomic: slot_set_powered() */
	struct occupancy *occ;	/* occupancy.c; NULL with markers off */
	/* Only presence_wait()'s thread touches these, without the lock. */
	struct pending pending[DRIVER_PENDING_MAX];
	int64_t next_connect_ns;	/* reversed mode: the next connection attempt */
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

/**
 * Reversed mode: one connection attempt to the card, bounded by
 * slot_handshake_ms().
 * @retval >=0 the connected socket
 * @retval <0 negative errno
 */
int slot_dial(const struct slot *s);

/* Drop the card connection (it may connect again). */
void slot_drop(struct slot *s, const char *why);

/**
 * Take @p fd, a new card that has answered its first ATR, as the slot's card
 * (presence.c; with the lock held and no card connected).
 */
void slot_adopt(struct slot *s, int fd, const uint8_t *atr, size_t atr_len);

/**
 * Is the card still connected?  Sends nothing: a card that closed, or sent
 * bytes unasked, is dropped.
 */
bool slot_alive(struct slot *s);

/* Wake presence_wait() of @p s (it re-reads the slot's state). */
void slot_wake(struct slot *s);

/*
 * pcscd powered the card of @p s up or reset it (@p on), or powered it
 * down; a newly connected card is unpowered.  Read by presence_stop() and
 * the occupancy watcher.
 */
void slot_set_powered(struct slot *s, bool on);

/* Bound for the card's first ATR on a connection: tight, see DRIVER_HANDSHAKE_MS. */
int slot_handshake_ms(const struct slot *s);

/*
 * Event-driven presence (presence.c), pcscd's TAG_IFD_POLLING_THREAD_WITH_TIMEOUT.
 */

/**
 * Block until the slot's card arrives or leaves (a change that
 * IFDHICCPresence has not reported yet), presence_stop() is called, or
 * min(@p timeout_ms, DRIVER_POLL_PERIOD_MS) pass.  Accepts new cards and
 * asks each for its ATR (the handshake) without the slot's lock, so a card
 * that does not answer holds up nobody.  Called without the lock.
 */
void presence_wait(struct slot *s, int timeout_ms);

/*
 * End presence_wait() of @p s now.  With none under way, end the next one
 * only if the card is unpowered (see presence.c for why not a powered one).
 * pcscd calls it (TAG_IFD_STOP_POLLING_THREAD) before it joins the reader
 * thread, and on the last SCardDisconnect so that the wait starts again
 * with the power-off grace timeout.
 */
void presence_stop(struct slot *s);

/* Close the connections still in their handshake (slot_close). */
void presence_close(struct slot *s);

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

/*
 * Occupancy (occupancy.c, markers on only): the card learns when the
 * reader becomes in use, exclusive, shared again and free, for every
 * client of pcscd, traced or not, from the reader state pcscd publishes
 * (docs/markers.md, events 07..0A).
 *
 * A watcher thread per slot is a client of its own pcscd through the
 * pcscd protocol below: no context, no handle, so it never changes what
 * it observes.  It polls every OCC_FAST_MS while the card is powered or
 * announced in use, else it sleeps, disconnected from pcscd, until pcscd
 * calls the driver (power-up, control call).  The APDU path asks once more
 * before the first APDU of a reader not yet announced in use, and before
 * each APDU while it is announced exclusive.
 *
 * Lock order: the occupancy mutex, then the slot lock; never the reverse.
 */

/* pcscd's client socket: in pcscd's socket directory, as the side channel. */
#define OCC_PCSCD_SOCKET SIDE_SOCKET_DIR "/pcscd.comm"
#define OCC_FAST_MS 5
/*
 * After a wake-up (a power-up, pcscd's last SCardDisconnect) the state
 * changes within microseconds: poll every OCC_BURST_MS for OCC_BURST_SPAN_MS.
 */
#define OCC_BURST_MS 1
#define OCC_BURST_SPAN_MS 10
/* Bound for each exchange with pcscd (one round trip). */
#define OCC_IO_MS 100
/* Connection attempts while pcscd does not serve yet: 10 ms doubling to 1 s. */
#define OCC_BACKOFF_MIN_MS 10
#define OCC_BACKOFF_MAX_MS 1000

/*
 * pcsc-lite 1.9.9's client protocol (winscard_msg.h, eventhandler.h), the
 * part the watcher uses.  A request is a header { u32 size, u32 command }
 * (host byte order) and size bytes; answers have no header.
 */
#define PCSCD_CMD_VERSION 0x11		/* body and answer: struct pcscd_version */
#define PCSCD_CMD_GET_READERS_STATE 0x12	/* no body; answer: PCSCD_MAX_READERS states */
#define PCSCD_PROTOCOL_MAJOR 4
#define PCSCD_PROTOCOL_MINOR 4
#define PCSCD_MAX_READERS 16		/* PCSCLITE_MAX_READERS_CONTEXTS */
#define PCSCD_READER_NAME_MAX 128	/* MAX_READERNAME */
#define PCSCD_SHARING_EXCLUSIVE (-1)	/* PCSCLITE_SHARING_EXCLUSIVE_CONTEXT */

struct pcscd_header {
	uint32_t size;
	uint32_t command;
};

struct pcscd_version {
	int32_t major;
	int32_t minor;
	uint32_t rv;
};

/* READER_STATE, as pcscd sends it (natural alignment). */
struct pcscd_reader_state {
	char name[PCSCD_READER_NAME_MAX];
	uint32_t event_counter;
	uint32_t state;		/* SCARD_PRESENT, SCARD_POWERED, ... */
	int32_t sharing;	/* -1 exclusive, 0 no handle, n > 0 shared handles */
	uint8_t atr[DRIVER_ATR_MAX];
	uint32_t atr_len;
	uint32_t protocol;
};

_Static_assert(sizeof(struct pcscd_reader_state) == 184, "pcsc-lite 1.9.9 READER_STATE");

/* What the card has been told. */
enum occ_state {
	OCC_FREE = 0,
	OCC_SHARED,		/* in use, not exclusively */
	OCC_EXCLUSIVE,
};

/* Which published reader is this slot's. */
struct occ_identity {
	const char *exact;	/* the whole reader name, or NULL: @p suffix decides */
	const char *suffix;	/* " II SS" (reader and slot numbers) */
	bool card;		/* a card is connected ... */
	const uint8_t *atr;	/* ... with this ATR */
	size_t atr_len;
};

/**
 * Find the slot's reader in pcscd's states: the exact name, else the one
 * name ending in the suffix, else among those the one whose published
 * presence and ATR equal the slot's card.
 * @retval >=0 its index
 * @retval -ENOENT none
 * @retval -EAGAIN more than one fits
 */
int occupancy_find(const struct pcscd_reader_state *states, size_t n,
		   const struct occ_identity *id);

/**
 * The events that take a card told @p from to pcscd's @p sharing, in order
 * (a first exclusive connect: in-use, then exclusive).
 * @param[out] to the state afterwards
 * @retval the number of events (0..2) in @p events
 */
size_t occupancy_transition(enum occ_state from, int32_t sharing, uint8_t events[2],
			    enum occ_state *to);

/**
 * Start the watcher of @p s (markers on), a client of the pcscd serving
 * @p pcscd_socket (OCC_PCSCD_SOCKET inside pcscd).  Never waits for pcscd:
 * the thread connects when pcscd serves.
 * @retval 0 started
 * @retval <0 negative errno; logged, the slot works without occupancy
 */
int occupancy_start(struct slot *s, const char *pcscd_socket);

/* Stop and join the watcher (bounded by OCC_IO_MS), before slot_close(). */
void occupancy_stop(struct slot *s);

/*
 * Look now: pcscd powered the card up or reset it (slot_set_powered()
 * recorded it; the watcher polls fast from then on), or its last
 * SCardDisconnect called the stop function (ifd.c) just before it
 * publishes the reader free.  Takes no lock.
 */
void occupancy_nudge(struct slot *s);

/*
 * Before an APDU or a forwarded marker, without the slot lock: a reader not
 * yet announced in use is asked once more, and announced in use anyway
 * (an APDU proves a handle); one announced exclusive is asked too (a
 * reconnect to shared comes before the next APDU).  No-op without a
 * watcher.
 */
void occupancy_before_use(struct slot *s);

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
