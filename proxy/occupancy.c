/*
 * occupancy.c — occupancy markers: the card learns when the reader becomes
 * in use, exclusive, shared again and free, for every client of pcscd,
 * traced or not (driver.h "Occupancy", docs/markers.md events 07..0A).
 *
 * The source is the reader state that pcscd publishes to its clients
 * (readerSharing: -1 exclusive, 0 no handle, n shared handles).  pcscd
 * 1.9.9 sets it at once in SCardConnect, SCardReconnect and
 * SCardDisconnect, but wakes waiting clients only when the reader's
 * event-handler loop turns, i.e. when our wait function returns, which
 * must keep its 0.4 s rhythm (each turn also advances pcscd's power-off
 * timer).  So the watcher does not wait for that wake-up: it asks for the
 * state itself (CMD_GET_READERS_STATE), every OCC_FAST_MS while the card
 * is powered or announced in use, and every OCC_BURST_MS for a moment
 * after pcscd powers the card up, calls the stop function of its last
 * SCardDisconnect or passes a control call.  Otherwise it sleeps without
 * a connection to pcscd (so that pcscd --auto-exit still exits).  It opens
 * no context and no handle: the state it reads is never its own doing.
 *
 * The APDU path closes the gap of a poll period: before an APDU (or a
 * forwarded marker) on a reader not announced in use, it asks once more
 * and announces in use anyway, since an APDU proves a handle; on a reader
 * announced exclusive it asks too, so that shared-again comes first.  Everything
 * that reads pcscd's state and tells the card runs under the occupancy
 * mutex, so markers follow the order of the states; the marker itself is
 * written under the slot lock, between two exchanges.
 */
#include "driver.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <pcsclite.h>

#define STATES_SIZE (PCSCD_MAX_READERS * sizeof(struct pcscd_reader_state))

struct occupancy {
	struct slot *slot;
	pthread_mutex_t lock;	/* the occupancy mutex: everything below but the atomics */
	pthread_t thread;
	int wake_fd;		/* eventfd: a power-up or a stop */
	bool stop;		/* atomic */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;			/* the connection to pcscd; -1 none */
	bool off;		/* pcscd speaks another protocol: occupancy off for the slot */
	int backoff_ms;
	int64_t next_connect_ns;
	enum occ_state announced;
	unsigned generation;	/* the slot generation that @announced is for */
	int lost;		/* the last failed lookup, logged once (0: found) */
	struct pcscd_reader_state states[PCSCD_MAX_READERS];
};

int
occupancy_find(const struct pcscd_reader_state *states, size_t n, const struct occ_identity *id)
{
	size_t suffix_len = id->suffix ? strlen(id->suffix) : 0;
	int found = -ENOENT, candidates = 0, matching = 0, match = -1;

	for (size_t i = 0; i < n; i++) {
		const char *name = states[i].name;
		size_t len = strnlen(name, sizeof(states[i].name));

		if (!len || len == sizeof(states[i].name))
			continue;	/* unused entry, or no terminator: not a name */
		if (id->exact) {
			if (!strcmp(name, id->exact))
				return (int)i;
			continue;
		}
		if (len < suffix_len || strcmp(name + len - suffix_len, id->suffix))
			continue;
		candidates++;
		found = (int)i;
		/* Several drivers number their readers alike: the card tells. */
		if (id->card && (states[i].state & SCARD_PRESENT) &&
		    states[i].atr_len == id->atr_len &&
		    !memcmp(states[i].atr, id->atr, id->atr_len)) {
			matching++;
			match = (int)i;
		}
	}
	if (candidates <= 1)
		return found;
	return matching == 1 ? match : -EAGAIN;
}

size_t
occupancy_transition(enum occ_state from, int32_t sharing, uint8_t events[2], enum occ_state *to)
{
	size_t n = 0;

	*to = from;
	if (sharing < PCSCD_SHARING_EXCLUSIVE)
		return 0;	/* not a value pcscd publishes: no change */
	if (sharing == 0) {
		if (from != OCC_FREE)
			events[n++] = MARKER_READER_FREE;
		*to = OCC_FREE;
		return n;
	}
	if (from == OCC_FREE)
		events[n++] = MARKER_READER_IN_USE;
	if (sharing == PCSCD_SHARING_EXCLUSIVE) {
		if (from != OCC_EXCLUSIVE)
			events[n++] = MARKER_READER_EXCLUSIVE;
		*to = OCC_EXCLUSIVE;
	} else {
		if (from == OCC_EXCLUSIVE)
			events[n++] = MARKER_READER_SHARED;
		*to = OCC_SHARED;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* The pcscd protocol (driver.h), every operation bounded                 */
/* ---------------------------------------------------------------------- */

static int
ms_until(int64_t deadline_ns)
{
	int64_t left = deadline_ns - trace_mono_ns();

	return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}

/*
 * Exactly @p len bytes within OCC_IO_MS.
 * @retval 0 read
 * @retval -ECONNRESET pcscd closed before the first byte
 * @retval -ETIMEDOUT nothing in time
 * @retval -EPROTO a part only (closed or late in mid-answer)
 */
static int
read_exact(int fd, void *buf, size_t len)
{
	int64_t deadline = trace_mono_ns() + (int64_t)OCC_IO_MS * 1000000;
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int rc = poll(&pfd, 1, ms_until(deadline));
		ssize_t n;

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return got ? -EPROTO : -ETIMEDOUT;
		n = recv(fd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return got ? -EPROTO : -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

static int
send_request(int fd, uint32_t command, const void *body, uint32_t size)
{
	uint8_t msg[sizeof(struct pcscd_header) + sizeof(struct pcscd_version)];
	struct pcscd_header h = { .size = size, .command = command };
	size_t len = sizeof(h) + size;
	ssize_t n;

	if (size > sizeof(msg) - sizeof(h))
		return -EINVAL;
	memcpy(msg, &h, sizeof(h));
	if (size)
		memcpy(msg + sizeof(h), body, size);
	/* A few bytes into an empty socket buffer: never blocks. */
	n = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)len ? 0 : -ECONNRESET;
}

static void
disconnect_pcscd(struct occupancy *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

static void
turn_off(struct occupancy *o, const char *why)
{
	driver_log(DRIVER_LOG_ERROR, "pcsctap: occupancy of port %u off: %s", o->slot->port, why);
	disconnect_pcscd(o);
	o->off = true;
}

/* Connect and agree on the protocol version (the occupancy mutex held). */
static int
connect_pcscd(struct occupancy *o)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct pcscd_version v = { PCSCD_PROTOCOL_MAJOR, PCSCD_PROTOCOL_MINOR, 0 };
	char why[96];
	int64_t now = trace_mono_ns();
	int fd, rc;

	if (now < o->next_connect_ns)
		return -EAGAIN;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(addr.sun_path, o->path, strlen(o->path) + 1);
	/* A Unix connect completes at once, or fails (EAGAIN: backlog full). */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		close(fd);
		/* pcscd calls the driver before it serves: try again, slower each time. */
		o->next_connect_ns = now + (int64_t)o->backoff_ms * 1000000;
		o->backoff_ms = o->backoff_ms * 2 > OCC_BACKOFF_MAX_MS ? OCC_BACKOFF_MAX_MS :
				o->backoff_ms * 2;
		return rc;
	}
	o->backoff_ms = OCC_BACKOFF_MIN_MS;
	rc = send_request(fd, PCSCD_CMD_VERSION, &v, sizeof(v));
	if (rc == 0)
		rc = read_exact(fd, &v, sizeof(v));
	if (rc == -EPROTO || (rc == 0 && (v.rv != 0 || v.major != PCSCD_PROTOCOL_MAJOR ||
					  v.minor != PCSCD_PROTOCOL_MINOR))) {
		close(fd);
		snprintf(why, sizeof(why), "pcscd protocol %d.%d (rv 0x%x), this driver speaks %d.%d",
			 rc ? -1 : v.major, rc ? -1 : v.minor, rc ? 0 : v.rv,
			 PCSCD_PROTOCOL_MAJOR, PCSCD_PROTOCOL_MINOR);
		turn_off(o, why);
		return -EPROTO;
	}
	if (rc < 0) {
		close(fd);
		o->next_connect_ns = now + (int64_t)OCC_BACKOFF_MIN_MS * 1000000;
		return rc;
	}
	o->fd = fd;
	driver_log(DRIVER_LOG_DEBUG, "pcsctap: occupancy of port %u: connected to pcscd",
		   o->slot->port);
	return 0;
}

/*
 * One CMD_GET_READERS_STATE round trip into o->states (the occupancy mutex
 * held).  A connection that pcscd closed is opened again next time; an
 * answer of another size turns occupancy off.
 * @retval 0 o->states holds pcscd's state
 * @retval <0 negative errno
 */
static int
query(struct occupancy *o)
{
	uint8_t extra;
	int rc;

	if (o->off)
		return -ENOTSUP;
	if (o->fd < 0 && (rc = connect_pcscd(o)) < 0)
		return rc;
	rc = send_request(o->fd, PCSCD_CMD_GET_READERS_STATE, NULL, 0);
	if (rc == 0)
		rc = read_exact(o->fd, o->states, STATES_SIZE);
	if (rc == -EPROTO) {
		turn_off(o, "short answer from pcscd");
		return rc;
	}
	if (rc < 0) {
		disconnect_pcscd(o);
		return rc;
	}
	/* Bytes beyond the array: pcscd's states are larger than ours. */
	if (recv(o->fd, &extra, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
		turn_off(o, "pcscd's reader states are larger than pcsc-lite 1.9.9's");
		return -EPROTO;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Refresh: read, compare, tell the card                                  */
/* ---------------------------------------------------------------------- */

static void
send_event(struct slot *s, uint8_t event, int64_t t_ns, bool count_known, uint32_t count)
{
	struct marker m = {
		.event = event,
		.present = MARKER_HAS(MARKER_TAG_TIMESTAMP),
		.timestamp_ns = (uint64_t)t_ns,
		.handles = count,
	};
	uint8_t body[MARKER_MAX_BODY];
	ssize_t n;

	if (count_known)
		m.present |= MARKER_HAS(MARKER_TAG_HANDLES);
	n = marker_encode(&m, body, sizeof(body));
	if (n > 0)
		(void)slot_marker(s, body, (size_t)n);
}

/*
 * Ask pcscd and tell the card what changed since the last announcement.
 * @p before_use: the APDU path, which needs in-use announced before it
 * goes on.  @retval whether the watcher should poll fast.
 */
static bool
refresh(struct occupancy *o, bool before_use)
{
	struct slot *s = o->slot;
	struct occ_identity id = { 0 };
	uint8_t events[2];
	size_t n = 0;
	int32_t sharing = 0;
	bool fast;
	int64_t t_ns;
	int rc, idx = -ENOENT;

	pthread_mutex_lock(&o->lock);
	if (o->off) {
		pthread_mutex_unlock(&o->lock);
		return false;
	}
	if (before_use) {
		bool announced;

		/*
		 * Shared: nothing an APDU could reveal.  Exclusive: asked again,
		 * so that a reconnect to shared is announced before the next
		 * APDU (of this client, or of one that joins).
		 */
		pthread_mutex_lock(&s->lock);
		announced = o->generation == s->generation && o->announced == OCC_SHARED;
		pthread_mutex_unlock(&s->lock);
		if (announced) {
			pthread_mutex_unlock(&o->lock);
			return true;
		}
	}
	rc = query(o);
	t_ns = trace_mono_ns();
	pthread_mutex_lock(&s->lock);
	if (s->fd < 0) {
		/* Nothing is sent while no card is connected. */
		fast = false;
		goto out;
	}
	if (o->generation != s->generation) {
		/* A new card knows nothing yet. */
		o->generation = s->generation;
		o->announced = OCC_FREE;
	}
	if (rc == 0) {
		id.exact = s->opts.name[0] ? s->reader : NULL;
		id.suffix = s->reader + (strlen(s->reader) >= 6 ? strlen(s->reader) - 6 : 0);
		id.card = true;
		id.atr = s->atr;
		id.atr_len = s->atr_len;
		idx = occupancy_find(o->states, PCSCD_MAX_READERS, &id);
		if (idx < 0 && idx != o->lost)
			driver_log(DRIVER_LOG_ERROR, "pcsctap: occupancy of port %u: %s \"%s\"; "
				   "nothing sent until %s", s->port,
				   idx == -EAGAIN ? "several readers with this card end in" :
				   id.exact ? "pcscd publishes no reader named" :
				   "pcscd publishes no reader ending in", id.exact ? id.exact : id.suffix,
				   idx == -EAGAIN ? "one does (set name= to the FRIENDLYNAME)" : "it does");
		o->lost = idx < 0 ? idx : 0;
	}
	if (idx >= 0) {
		sharing = o->states[idx].sharing;
		n = occupancy_transition(o->announced, sharing, events, &o->announced);
	}
	for (size_t i = 0; i < n; i++)
		send_event(s, events[i], t_ns, true,
			   sharing == PCSCD_SHARING_EXCLUSIVE ? 1 : (uint32_t)sharing);
	/*
	 * pcscd has not published the handle, or cannot be asked: the APDU
	 * proves one.  Not for a reader we cannot find: no free would follow.
	 */
	if (before_use && o->announced == OCC_FREE && (rc < 0 || idx >= 0)) {
		send_event(s, MARKER_READER_IN_USE, t_ns, false, 0);
		o->announced = OCC_SHARED;
	}
	fast = o->announced != OCC_FREE || __atomic_load_n(&s->powered, __ATOMIC_ACQUIRE);
out:
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&o->lock);
	return fast;
}

/* How long the watcher sleeps before its next look (the occupancy mutex held). */
static int
next_wait_ms(const struct occupancy *o, bool fast, int64_t burst_end)
{
	int connect_ms;

	if (o->off)
		return -1;	/* only a stop ends it */
	if (trace_mono_ns() < burst_end)
		return OCC_BURST_MS;
	/*
	 * Unpowered and free: a client must make pcscd call the driver before
	 * it can use the card (a power-up, a control call), and that wakes
	 * the watcher.  Until then it holds no connection to pcscd, which
	 * would keep pcscd --auto-exit from ever exiting (any connection
	 * cancels its idle alarm).
	 */
	if (!fast)
		return -1;
	if (o->fd >= 0)
		return OCC_FAST_MS;
	/* Not connected: the next attempt, within the usual bounds. */
	connect_ms = ms_until(o->next_connect_ns);
	return connect_ms > OCC_FAST_MS ? OCC_FAST_MS :
	       connect_ms < OCC_BACKOFF_MIN_MS ? OCC_BACKOFF_MIN_MS : connect_ms;
}

static void *
watch(void *arg)
{
	struct occupancy *o = arg;
	int64_t burst_end = 0;

	while (!__atomic_load_n(&o->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = o->wake_fd, .events = POLLIN };
		bool fast = refresh(o, false);
		uint64_t v;
		int ms;

		pthread_mutex_lock(&o->lock);
		ms = next_wait_ms(o, fast, burst_end);
		if (ms < 0)
			disconnect_pcscd(o);
		pthread_mutex_unlock(&o->lock);
		if (poll(&pfd, 1, ms) > 0) {
			if (read(o->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: nothing to drain. */
			}
			/* A power-up or a last disconnect: the state changes right after. */
			burst_end = trace_mono_ns() + (int64_t)OCC_BURST_SPAN_MS * 1000000;
		}
	}
	return NULL;
}

int
occupancy_start(struct slot *s, const char *pcscd_socket)
{
	struct occupancy *o = calloc(1, sizeof(*o));
	int rc = -ENOMEM;

	if (!o)
		goto fail;
	o->slot = s;
	o->fd = -1;
	o->backoff_ms = OCC_BACKOFF_MIN_MS;
	if (strlen(pcscd_socket) >= sizeof(o->path)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	memcpy(o->path, pcscd_socket, strlen(pcscd_socket) + 1);
	o->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	pthread_mutex_init(&o->lock, NULL);
	rc = -pthread_create(&o->thread, NULL, watch, o);
	if (rc < 0) {
		pthread_mutex_destroy(&o->lock);
		close(o->wake_fd);
		goto fail;
	}
	/* Tests find the thread by name (markers off: none). */
	(void)pthread_setname_np(o->thread, "pcsctap-occ");
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->occ, o, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->lock);
	return 0;
fail:
	driver_log(DRIVER_LOG_ERROR, "pcsctap: no occupancy markers on port %u: %s", s->port,
		   strerror(-rc));
	free(o);
	return rc;
}

static void
wake(struct occupancy *o)
{
	uint64_t one = 1;

	if (write(o->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the watcher wakes anyway. */
	}
}

void
occupancy_stop(struct slot *s)
{
	struct occupancy *o;

	pthread_mutex_lock(&s->lock);
	o = s->occ;
	__atomic_store_n(&s->occ, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->lock);
	if (!o)
		return;
	__atomic_store_n(&o->stop, true, __ATOMIC_RELEASE);
	wake(o);
	/* At most one round trip (OCC_IO_MS) and one marker write away. */
	pthread_join(o->thread, NULL);
	disconnect_pcscd(o);
	close(o->wake_fd);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

void
occupancy_nudge(struct slot *s)
{
	struct occupancy *o = __atomic_load_n(&s->occ, __ATOMIC_ACQUIRE);

	if (o)
		wake(o);
}

void
occupancy_before_use(struct slot *s)
{
	/*
	 * s->occ is cleared only in IFDHCloseChannel, which pcscd never runs
	 * beside another call, after the side channel's thread has stopped.
	 */
	struct occupancy *o = __atomic_load_n(&s->occ, __ATOMIC_ACQUIRE);

	if (o)
		(void)refresh(o, true);
}
