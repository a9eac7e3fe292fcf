/*
 * slot.c — one slot of the driver: the TCP connection to one virtual card
 * and the vpcd exchanges on it.
 *
 * Differences from stock vpcd, all on purpose:
 *  - each frame leaves in one write with TCP_NODELAY (no Nagle stall);
 *  - every read is bounded by the slot's timeout, after which the card is
 *    dropped (the stream is out of step) and may connect again;
 *  - bytes the card sends unasked, or its closing, are noticed before the
 *    next request, so a request is never answered by stale bytes;
 *  - the default listen address is 127.0.0.1, not every interface;
 *  - a card's first ATR on a connection is awaited only briefly
 *    (DRIVER_HANDSHAKE_MS);
 *  - with presence=event (the default) the connection has TCP keepalive,
 *    so that a card gone silent is noticed without polling it.
 * With presence=poll a well-behaved card sees the same messages as with
 * vpcd; presence=event only leaves out the presence polls (presence.c).
 */
#include "driver.h"
#include "wire.h"
#include "util.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static void
set_reader_name(struct slot *s)
{
	unsigned reader = (unsigned)(s->lun >> 16) & 0xFF;

	if (s->opts.name[0])
		snprintf(s->reader, sizeof(s->reader), "%s %02X %02X", s->opts.name, reader, s->index);
	else if (s->opts.host[0])
		snprintf(s->reader, sizeof(s->reader), "%s:%u %02X %02X", s->opts.host,
			 s->opts.port, reader, s->index);
	else
		snprintf(s->reader, sizeof(s->reader), "pcsctap:%u %02X %02X", s->opts.port,
			 reader, s->index);
}

static void
record(struct slot *s, int kind, int64_t t0, const uint8_t *sent, size_t sent_len,
       const uint8_t *received, size_t received_len, const char *detail)
{
	if (s->trace)
		wiretrace_record(s->trace, s->reader, kind, t0, sent, sent_len, received,
				 received_len, detail);
}

static int
listen_socket(const char *addr, unsigned port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL, *ai;
	char service[8];
	int fd = -1, err = -EADDRNOTAVAIL;

	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(addr, service, &hints, &res) != 0)
		return -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		/* pcscd restarts must not wait for TIME_WAIT, as with vpcd. */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

/* A bounded, non-blocking connect (reversed mode). */
static int
connect_socket(const char *host, unsigned port, int timeout_ms)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL, *ai;
	char service[8];
	int fd = -1;

	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t slen = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : -ECONNREFUSED;
}

/*
 * A card that vanishes without closing (its host lost, a network in
 * between) is noticed within about IDLE + INTERVAL * PROBES seconds of
 * silence, without a message to the card.  Not every fd is TCP (tests use
 * socketpairs): errors stay quiet.
 */
static void
keepalive_on(int fd)
{
	int on = 1, idle = DRIVER_KEEPALIVE_IDLE_S, intvl = DRIVER_KEEPALIVE_INTERVAL_S;
	int probes = DRIVER_KEEPALIVE_PROBES;
	unsigned user_timeout_ms = 1000u * (DRIVER_KEEPALIVE_IDLE_S +
					   DRIVER_KEEPALIVE_INTERVAL_S * DRIVER_KEEPALIVE_PROBES);

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0)
		return;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
	/* The same bound for data the card does not acknowledge. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
			 sizeof(user_timeout_ms));
}

/* The connection itself blocks; every read is bounded by poll(). */
static void
adopt(struct slot *s, int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	vpcd_socket_tune(fd);
	if (!s->opts.presence_poll)
		keepalive_on(fd);
	s->fd = fd;
	s->generation++;
	slot_set_powered(s, false);
	record(s, TRACE_WIRE_CARD_CONNECTED, trace_mono_ns(), NULL, 0, NULL, 0, NULL);
	driver_log(DRIVER_LOG_INFO, "pcsctap: virtual card connected on port %u", s->port);
}

/* Slot @p index of @p lun, its name set and nothing open yet. */
static void
slot_init(struct slot *s, unsigned long lun, unsigned index, const struct devopts *o)
{
	pthread_mutex_init(&s->lock, NULL);
	s->lun = lun;
	s->index = index;
	s->opts = *o;
	s->port = o->port + index;
	s->listen_fd = -1;
	s->fd = -1;
	s->trace = NULL;
	s->atr_len = 0;
	s->ignore_unasked = false;
	s->wake_fd = -1;
	s->wait_seq = 0;
	s->stop_for = 0;
	s->powered = false;
	s->occ = NULL;
	for (size_t i = 0; i < DRIVER_PENDING_MAX; i++)
		s->pending[i].fd = -1;
	s->next_connect_ns = 0;
	set_reader_name(s);
}

void
slot_init_with_fd(struct slot *s, int fd, const struct devopts *o)
{
	slot_init(s, 0, 0, o);
	adopt(s, fd);
}

int
slot_open(struct slot *s, unsigned long lun, unsigned index, const struct devopts *o)
{
	int fd;

	slot_init(s, lun, index, o);
	if (!o->presence_poll) {
		s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->wake_fd < 0) {
			fd = -errno;
			driver_log(DRIVER_LOG_ERROR, "pcsctap: no eventfd for port %u: %s",
				   s->port, strerror(-fd));
			goto fail;
		}
	}
	if (o->trace[0])
		s->trace = wiretrace_open(o->trace);
	if (o->host[0]) {
		/* As vpcd, try the card at once; presence_wait() does otherwise. */
		if (o->presence_poll)
			(void)slot_connect(s);
		return 0;
	}
	fd = listen_socket(o->listen, s->port);
	if (fd < 0) {
		driver_log(DRIVER_LOG_ERROR, "pcsctap: cannot listen on %s port %u: %s",
			   o->listen, s->port, strerror(-fd));
		goto fail;
	}
	s->listen_fd = fd;
	driver_log(DRIVER_LOG_INFO, "pcsctap: waiting for a virtual card on %s port %u%s",
		   o->listen, s->port, o->markers ? " (markers on)" : "");
	return 0;
fail:
	wiretrace_close(s->trace);
	s->trace = NULL;
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
	pthread_mutex_destroy(&s->lock);
	return fd;
}

void
slot_close(struct slot *s)
{
	if (s->fd >= 0)
		slot_drop(s, "reader closed");
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	presence_close(s);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
	wiretrace_close(s->trace);
	s->trace = NULL;
	pthread_mutex_destroy(&s->lock);
}

void
slot_drop(struct slot *s, const char *why)
{
	if (s->fd < 0)
		return;
	/* presence_wait() may poll a duplicate: the card must see the end now. */
	(void)shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	s->fd = -1;
	s->atr_len = 0;
	record(s, TRACE_WIRE_CARD_GONE, trace_mono_ns(), NULL, 0, NULL, 0, why);
	driver_log(DRIVER_LOG_INFO, "pcsctap: virtual card on port %u gone: %s", s->port,
		   why ? why : "closed");
	slot_wake(s);
}

void
slot_wake(struct slot *s)
{
	uint64_t one = 1;

	if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the waiter is woken anyway. */
	}
}

void
slot_set_powered(struct slot *s, bool on)
{
	__atomic_store_n(&s->powered, on, __ATOMIC_RELEASE);
}

int
slot_handshake_ms(const struct slot *s)
{
	return s->opts.timeout_ms < DRIVER_HANDSHAKE_MS ? s->opts.timeout_ms : DRIVER_HANDSHAKE_MS;
}

void
slot_adopt(struct slot *s, int fd, const uint8_t *atr, size_t atr_len)
{
	adopt(s, fd);
	if (atr_len > sizeof(s->atr))
		atr_len = sizeof(s->atr);
	memcpy(s->atr, atr, atr_len);
	s->atr_len = atr_len;
}

int
slot_dial(const struct slot *s)
{
	return connect_socket(s->opts.host, s->port, slot_handshake_ms(s));
}

bool
slot_connect(struct slot *s)
{
	int fd;

	if (s->fd >= 0)
		return true;
	if (s->listen_fd >= 0) {
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return false;
	} else if (s->opts.host[0]) {
		fd = slot_dial(s);
		if (fd < 0)
			return false;
	} else {
		return false;
	}
	adopt(s, fd);
	return true;
}

/*
 * The protocol is strictly request/answer: anything readable before a
 * request is either the card closing or bytes it sent unasked.  Either way
 * the connection cannot be trusted any more.
 */
static int
check_idle(struct slot *s)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	uint8_t b;
	ssize_t n;

	/* As vpcd: only the presence poll (re)connects a card. */
	if (s->fd < 0)
		return -ENOTCONN;
	if (s->ignore_unasked || poll(&pfd, 1, 0) <= 0)
		return 0;
	n = recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	slot_drop(s, n == 0 ? "card closed the connection" :
		  n < 0 && errno == ETIMEDOUT ? "card silent: TCP keepalive timed out" :
		  n < 0 ? "connection error" : "card sent data unasked");
	return -ECONNRESET;
}

bool
slot_alive(struct slot *s)
{
	return check_idle(s) == 0;
}

static const char *
read_error(ssize_t rc)
{
	switch (rc) {
	case -ETIMEDOUT: return "card did not answer in time";
	case -ECONNRESET: return "card closed the connection";
	case -EMSGSIZE: return "answer too long";
	case -EPROTO: return "card sent more than its answer";
	case 0: return "empty answer";
	default: return "connection error";
	}
}

static int
send_frame(struct slot *s, const uint8_t *payload, size_t len)
{
	int rc = check_idle(s);

	if (rc < 0)
		return rc;
	rc = vpcd_frame_write(s->fd, payload, len);
	if (rc < 0)
		slot_drop(s, "write failed");
	return rc;
}

int
slot_control(struct slot *s, uint8_t ctrl)
{
	int64_t t0 = trace_mono_ns();
	int rc = send_frame(s, &ctrl, 1);

	record(s, ctrl, t0, NULL, 0, NULL, 0, rc < 0 ? "not sent: no card" : NULL);
	return rc;
}

ssize_t
slot_get_atr(struct slot *s, uint8_t *atr, size_t cap, bool traced)
{
	int64_t t0 = trace_mono_ns();
	uint8_t ctrl = VPCD_CTRL_ATR;
	ssize_t n;
	int rc;

	rc = send_frame(s, &ctrl, 1);
	if (rc < 0) {
		if (traced)
			record(s, TRACE_WIRE_GET_ATR, t0, NULL, 0, NULL, 0, "not sent: no card");
		return rc;
	}
	/* A connection's first ATR is its handshake: it must not hold up the reader. */
	n = vpcd_frame_read_answer(s->fd, s->buf, DRIVER_ATR_MAX,
				   s->atr_len ? s->opts.timeout_ms : slot_handshake_ms(s));
	if (n <= 0) {
		/* vpcd too treats an empty ATR as a removed card. */
		record(s, TRACE_WIRE_GET_ATR, t0, NULL, 0, NULL, 0, read_error(n));
		slot_drop(s, read_error(n));
		return n < 0 ? n : -EPROTO;
	}
	if (traced)
		record(s, TRACE_WIRE_GET_ATR, t0, NULL, 0, s->buf, (size_t)n, NULL);
	memcpy(s->atr, s->buf, (size_t)n);
	s->atr_len = (size_t)n;
	if ((size_t)n > cap)
		return -ENOBUFS;
	memcpy(atr, s->buf, (size_t)n);
	return n;
}

ssize_t
slot_transmit(struct slot *s, const uint8_t *apdu, size_t len, uint8_t *rx, size_t cap)
{
	int64_t t0 = trace_mono_ns();
	ssize_t n;
	int rc;

	/* A 1-byte payload would be read as a control byte. */
	if (len < 2 || len > VPCD_FRAME_MAX) {
		record(s, TRACE_WIRE_APDU, t0, apdu, len, NULL, 0, "not sent: bad length");
		return -EINVAL;
	}
	rc = send_frame(s, apdu, len);
	if (rc < 0) {
		record(s, TRACE_WIRE_APDU, t0, apdu, len, NULL, 0, "not sent: no card");
		return rc;
	}
	n = vpcd_frame_read_answer(s->fd, s->buf, sizeof(s->buf), s->opts.timeout_ms);
	if (n <= 0) {
		record(s, TRACE_WIRE_APDU, t0, apdu, len, NULL, 0, read_error(n));
		slot_drop(s, read_error(n));
		return n < 0 ? n : -EPROTO;
	}
	record(s, TRACE_WIRE_APDU, t0, apdu, len, s->buf, (size_t)n, NULL);
	if ((size_t)n > cap)
		return -ENOBUFS;
	memcpy(rx, s->buf, (size_t)n);
	return n;
}

int
slot_marker(struct slot *s, const uint8_t *body, size_t len)
{
	static const uint8_t announce = VPCD_CTRL_MARKER;
	const struct vpcd_payload frames[2] = { { &announce, 1 }, { body, len } };
	int64_t t0 = trace_mono_ns();
	int rc;

	if (len < 2 || len > MARKER_MAX_BODY)
		return -EINVAL;
	rc = check_idle(s);
	if (rc == 0) {
		/* Both frames in one write, as one TCP segment when they fit. */
		rc = vpcd_frames_write(s->fd, frames, 2);
		if (rc < 0)
			slot_drop(s, "write failed");
	}
	record(s, TRACE_WIRE_MARKER, t0, body, len, NULL, 0, rc < 0 ? "not sent: no card" : NULL);
	return rc;
}
