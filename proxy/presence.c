/*
 * presence.c — event-driven card presence: the wait function that pcscd's
 * reader thread calls (TAG_IFD_POLLING_THREAD_WITH_TIMEOUT) instead of
 * polling every 0.4 s.
 *
 * The wait blocks in poll() on the slot's listening socket, the new
 * connections in their handshake and the connected card's socket, and
 * returns as soon as the slot's state differs from what IFDHICCPresence
 * last reported.  IFDHICCPresence then answers from the connection, so an
 * idle card gets no message at all; the card is asked for its ATR only
 * once per connection here, and when pcscd powers it up or resets it.
 *
 * The handshake (accept, GET ATR, wait for the answer) runs without the
 * slot's lock and several connections may be in it at once, so a
 * connection that never answers holds up neither the slot's other calls
 * nor a real card that connects after it.
 */
#include "driver.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
ms_until(int64_t deadline_ns)
{
	int64_t left = deadline_ns - trace_mono_ns();

	if (left <= 0)
		return 0;
	/* Round up: poll() must not wake just before the deadline. */
	return (int)((left + 999999) / 1000000);
}

static void
pending_close(struct slot *s, struct pending *p, const char *why)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
	if (why)
		driver_log(DRIVER_LOG_INFO, "pcsctap: new connection on port %u closed: %s",
			   s->port, why);
}

void
presence_close(struct slot *s)
{
	for (size_t i = 0; i < DRIVER_PENDING_MAX; i++)
		pending_close(s, &s->pending[i], NULL);
}

/* Start the handshake of @p fd: ask for its ATR. */
static void
pending_start(struct slot *s, int fd)
{
	static const uint8_t get_atr = VPCD_CTRL_ATR;
	struct pending *slot = &s->pending[0];

	/* Full: the oldest makes room (a flood must not lock real cards out). */
	for (size_t i = 0; i < DRIVER_PENDING_MAX; i++) {
		if (s->pending[i].fd < 0) {
			slot = &s->pending[i];
			break;
		}
		if (s->pending[i].deadline_ns < slot->deadline_ns)
			slot = &s->pending[i];
	}
	pending_close(s, slot, "superseded by a newer connection before its ATR");
	vpcd_socket_tune(fd);
	if (vpcd_frame_write(fd, &get_atr, 1) < 0) {
		close(fd);
		return;
	}
	slot->fd = fd;
	slot->deadline_ns = trace_mono_ns() + (int64_t)slot_handshake_ms(s) * 1000000;
	driver_log(DRIVER_LOG_DEBUG, "pcsctap: new connection on port %u, asked for its ATR",
		   s->port);
}

/* The answer of a connection in its handshake is there (or it closed). */
static void
pending_answer(struct slot *s, struct pending *p)
{
	uint8_t atr[DRIVER_ATR_MAX];
	int ms = ms_until(p->deadline_ns);
	ssize_t n;

	n = vpcd_frame_read_answer(p->fd, atr, sizeof(atr), ms > 0 ? ms : 1);
	if (n <= 0) {
		pending_close(s, p, n == 0 ? "empty ATR" : strerror((int)-n));
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (s->fd < 0) {
		slot_adopt(s, p->fd, atr, (size_t)n);
		p->fd = -1;
	}
	pthread_mutex_unlock(&s->lock);
	/* The first card to answer is the slot's card; the others go. */
	for (size_t i = 0; i < DRIVER_PENDING_MAX; i++)
		pending_close(s, &s->pending[i], "another card answered first");
}

static void
pending_expire(struct slot *s)
{
	int64_t now = trace_mono_ns();

	for (size_t i = 0; i < DRIVER_PENDING_MAX; i++) {
		if (s->pending[i].fd >= 0 && s->pending[i].deadline_ns <= now)
			pending_close(s, &s->pending[i], "no ATR in time");
	}
}

static bool
pending_any(const struct slot *s)
{
	for (size_t i = 0; i < DRIVER_PENDING_MAX; i++) {
		if (s->pending[i].fd >= 0)
			return true;
	}
	return false;
}

/* Reversed mode: one connection attempt per poll period, as vpcd. */
static void
dial(struct slot *s)
{
	int64_t now = trace_mono_ns();
	int fd;

	if (!s->opts.host[0] || pending_any(s) || now < s->next_connect_ns)
		return;
	s->next_connect_ns = now + (int64_t)DRIVER_POLL_PERIOD_MS * 1000000;
	fd = slot_dial(s);
	if (fd >= 0)
		pending_start(s, fd);
}

/*
 * Is there a change for IFDHICCPresence to report, or a stop for wait @p seq?
 * If not, @p card is a duplicate of the connected card's socket (or -1), to
 * poll without the lock; @p connected says whether a card is connected.
 */
static bool
report_due(struct slot *s, unsigned seq, int *card, bool *connected)
{
	bool due = true;
	unsigned stop = seq;

	*card = -1;
	*connected = false;
	pthread_mutex_lock(&s->lock);
	if (!__atomic_compare_exchange_n(&s->stop_for, &stop, 0, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		*connected = slot_alive(s);
		due = *connected != s->present;
		if (!due && *connected)
			*card = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
	}
	pthread_mutex_unlock(&s->lock);
	return due;
}

static void
drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
}

/* presence_wait() as wait number @p seq. */
static void
wait_for_change(struct slot *s, int timeout_ms, unsigned seq)
{
	/*
	 * pcscd passes 5 s or 10 min, and turns its loop only when this
	 * returns: that is also when it powers down an unused card and
	 * publishes sharing changes.  Returning at least every poll period
	 * keeps those on vpcd's timing; a return costs no message.
	 */
	int64_t end = trace_mono_ns() +
		      (int64_t)(timeout_ms < DRIVER_POLL_PERIOD_MS ? timeout_ms :
				DRIVER_POLL_PERIOD_MS) * 1000000;

	for (;;) {
		struct pollfd pfd[2 + DRIVER_PENDING_MAX];
		struct pending *of[2 + DRIVER_PENDING_MAX] = { NULL };
		nfds_t n = 0;
		bool connected;
		int card, ms, rc;

		if (report_due(s, seq, &card, &connected))
			return;
		if (!connected)
			dial(s);
		ms = ms_until(end);
		if (ms == 0) {
			if (card >= 0)
				close(card);
			return;
		}
		pfd[n++] = (struct pollfd){ .fd = s->wake_fd, .events = POLLIN };
		if (card >= 0)
			pfd[n++] = (struct pollfd){ .fd = card, .events = POLLIN };
		if (!connected) {
			if (s->listen_fd >= 0)
				pfd[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
			for (size_t i = 0; i < DRIVER_PENDING_MAX; i++) {
				struct pending *p = &s->pending[i];
				int left;

				if (p->fd < 0)
					continue;
				of[n] = p;
				pfd[n++] = (struct pollfd){ .fd = p->fd, .events = POLLIN };
				left = ms_until(p->deadline_ns);
				if (left < ms)
					ms = left;
			}
			if (s->opts.host[0] && !pending_any(s) && ms_until(s->next_connect_ns) < ms)
				ms = ms_until(s->next_connect_ns);
		}
		rc = poll(pfd, n, ms);
		if (card >= 0)
			close(card);
		if (rc < 0 && errno != EINTR)
			return;		/* pcscd sleeps 0.4 s and calls again */
		if (pfd[0].revents)
			drain(s->wake_fd);
		for (nfds_t i = 1; rc > 0 && i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (of[i]) {
				if (of[i]->fd >= 0)
					pending_answer(s, of[i]);
			} else if (pfd[i].fd == s->listen_fd) {
				int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

				if (fd >= 0)
					pending_start(s, fd);
			}
			/* The card's socket: report_due() looks at it under the lock. */
		}
		pending_expire(s);
	}
}

void
presence_wait(struct slot *s, int timeout_ms)
{
	/* Odd while the wait is under way. */
	unsigned seq = __atomic_add_fetch(&s->wait_seq, 1, __ATOMIC_ACQ_REL);

	wait_for_change(s, timeout_ms, seq);
	__atomic_add_fetch(&s->wait_seq, 1, __ATOMIC_ACQ_REL);
}

/*
 * A stop ends the wait under way.  One that comes between two waits ends
 * the next only while the card is unpowered (pcscd's shutdown then joins
 * the thread at once).  With the card powered it is dropped: pcscd's last
 * SCardDisconnect sets the power-off grace period and then stops the wait,
 * and a reader thread between two waits at that moment counts the grace
 * period in the turn it is in (eventhandler.c), so ending the next wait as
 * well would have pcscd power the card off at once, before the grace period
 * and before the watcher has announced the reader free.  A dropped stop
 * costs at most one DRIVER_POLL_PERIOD_MS, vpcd's own rhythm.
 */
void
presence_stop(struct slot *s)
{
	unsigned seq = __atomic_load_n(&s->wait_seq, __ATOMIC_ACQUIRE);

	if (!(seq & 1)) {
		if (__atomic_load_n(&s->powered, __ATOMIC_ACQUIRE))
			return;
		seq++;
	}
	__atomic_store_n(&s->stop_for, seq, __ATOMIC_RELEASE);
	slot_wake(s);
}
