/*
 * test_occupancy.c — unit tests of the occupancy watcher (proxy/occupancy.c)
 * without pcscd: the transitions, finding the slot's reader among pcscd's
 * published states, and the watcher against a fake pcscd on a Unix socket
 * (scripted sharing counts, an APDU before pcscd publishes the handle, a
 * short answer, another protocol version, a pcscd that never answers).
 * The card is the other end of a socketpair.
 */
#include "driver.h"
#include "wire.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <pcsclite.h>

/* Bound for a marker that must come (the watcher polls every few ms). */
#define MARKER_WAIT_MS 10000

Test(occupancy, transitions)
{
	static const struct {
		enum occ_state from;
		int32_t sharing;
		uint8_t events[2];
		size_t n;
		enum occ_state to;
	} cases[] = {
		{ OCC_FREE, 0, { 0 }, 0, OCC_FREE },
		{ OCC_FREE, 1, { MARKER_READER_IN_USE }, 1, OCC_SHARED },
		{ OCC_FREE, 3, { MARKER_READER_IN_USE }, 1, OCC_SHARED },
		{ OCC_FREE, -1, { MARKER_READER_IN_USE, MARKER_READER_EXCLUSIVE }, 2, OCC_EXCLUSIVE },
		{ OCC_SHARED, 2, { 0 }, 0, OCC_SHARED },
		{ OCC_SHARED, -1, { MARKER_READER_EXCLUSIVE }, 1, OCC_EXCLUSIVE },
		{ OCC_SHARED, 0, { MARKER_READER_FREE }, 1, OCC_FREE },
		{ OCC_EXCLUSIVE, -1, { 0 }, 0, OCC_EXCLUSIVE },
		{ OCC_EXCLUSIVE, 1, { MARKER_READER_SHARED }, 1, OCC_SHARED },
		{ OCC_EXCLUSIVE, 0, { MARKER_READER_FREE }, 1, OCC_FREE },
		/* Not a value pcscd publishes: nothing changes. */
		{ OCC_SHARED, -7, { 0 }, 0, OCC_SHARED },
		{ OCC_FREE, -2, { 0 }, 0, OCC_FREE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t ev[2] = { 0 };
		enum occ_state to;
		size_t n = occupancy_transition(cases[i].from, cases[i].sharing, ev, &to);

		cr_expect_eq(n, cases[i].n, "case %zu", i);
		cr_expect_eq(to, cases[i].to, "case %zu", i);
		for (size_t k = 0; k < n && k < 2; k++)
			cr_expect_eq(ev[k], cases[i].events[k], "case %zu event %zu", i, k);
	}
}

static void
put_reader(struct pcscd_reader_state *st, const char *name, bool present, const uint8_t *atr,
	   size_t atr_len, int32_t sharing)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->state = present ? SCARD_PRESENT : SCARD_ABSENT;
	memcpy(st->atr, atr, atr_len);
	st->atr_len = (uint32_t)atr_len;
	st->sharing = sharing;
}

Test(occupancy, find)
{
	static const uint8_t ours[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };
	static const uint8_t other[] = { 0x3B, 0x00 };
	struct pcscd_reader_state st[PCSCD_MAX_READERS];
	struct occ_identity id = {
		.exact = NULL, .suffix = " 01 00", .card = true, .atr = ours, .atr_len = sizeof(ours),
	};

	memset(st, 0, sizeof(st));
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), -ENOENT, "no reader");
	put_reader(&st[0], "Virtual PCD 00 00", true, ours, sizeof(ours), 0);
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), -ENOENT, "other numbers");
	put_reader(&st[3], "Bed 01 00", false, other, 0, 0);
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), 3, "the one name that ends so");
	/* vpcd loaded too, numbering its readers alike: the card tells them apart. */
	put_reader(&st[5], "Virtual PCD 01 00", true, other, sizeof(other), 1);
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), -EAGAIN, "neither has our card");
	put_reader(&st[3], "Bed 01 00", true, ours, sizeof(ours), 1);
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), 3, "ours has our card");
	put_reader(&st[5], "Virtual PCD 01 00", true, ours, sizeof(ours), 1);
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), -EAGAIN, "both have it");
	id.card = false;
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), -EAGAIN, "no card to tell");
	/* name= set: only the exact name counts. */
	id.exact = "Virtual PCD 01 00";
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), 5);
	id.exact = "Nothing 01 00";
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), -ENOENT);
	/* A name without its terminator is no name. */
	id.exact = NULL;
	memset(&st[5], 0, sizeof(st[5]));
	memset(st[7].name, 'x', sizeof(st[7].name));
	memcpy(st[7].name + sizeof(st[7].name) - 6, " 01 00", 6);
	cr_expect_eq(occupancy_find(st, PCSCD_MAX_READERS, &id), 3);
}

/* ---------------------------------------------------------------------- */
/* A fake pcscd                                                           */
/* ---------------------------------------------------------------------- */

enum fake_mode {
	FAKE_NORMAL,
	FAKE_SHORT,		/* a part of the states, then close */
	FAKE_OLD_VERSION,	/* answers protocol 4.3 */
	FAKE_SILENT,		/* never answers */
};

struct fake {
	enum fake_mode mode;
	char path[108];
	int listen_fd;
	int stop[2];
	pthread_t thread;
	int32_t sharing;	/* atomic: what the states say of the reader */
	int connections;	/* atomic */
	int open;		/* atomic: connections not closed yet */
	int queries;		/* atomic */
};

static bool
read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void
serve_client(struct fake *f, int fd)
{
	struct pcscd_header h;
	struct pcscd_version v;
	struct pcscd_reader_state st[PCSCD_MAX_READERS];

	if (!read_all(fd, &h, sizeof(h)) || h.command != PCSCD_CMD_VERSION ||
	    h.size != sizeof(v) || !read_all(fd, &v, sizeof(v)))
		return;
	if (f->mode == FAKE_SILENT) {
		char b;

		if (read(fd, &b, 1) < 0) {
			/* until the driver closes */
		}
		return;
	}
	v.rv = 0;
	v.minor = f->mode == FAKE_OLD_VERSION ? 3 : PCSCD_PROTOCOL_MINOR;
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		return;
	while (read_all(fd, &h, sizeof(h)) && h.command == PCSCD_CMD_GET_READERS_STATE) {
		static const uint8_t atr[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };

		__atomic_add_fetch(&f->queries, 1, __ATOMIC_ACQ_REL);
		memset(st, 0, sizeof(st));
		put_reader(&st[0], "Somebody else 00 01", true, atr, sizeof(atr), 3);
		put_reader(&st[1], "Bed 00 00", true, atr, sizeof(atr),
			   __atomic_load_n(&f->sharing, __ATOMIC_ACQUIRE));
		if (f->mode == FAKE_SHORT) {
			if (write(fd, st, 100) < 0) {
				/* the driver is gone: nothing to tell */
			}
			return;
		}
		if (write(fd, st, sizeof(st)) != sizeof(st))
			return;
	}
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd pfd[2] = { { f->listen_fd, POLLIN, 0 }, { f->stop[0], POLLIN, 0 } };
		int fd;

		if (poll(pfd, 2, -1) < 0 || pfd[1].revents)
			break;
		fd = accept(f->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		__atomic_add_fetch(&f->connections, 1, __ATOMIC_ACQ_REL);
		__atomic_add_fetch(&f->open, 1, __ATOMIC_ACQ_REL);
		serve_client(f, fd);
		__atomic_sub_fetch(&f->open, 1, __ATOMIC_ACQ_REL);
		close(fd);
	}
	return NULL;
}

static void
fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	snprintf(f->path, sizeof(f->path), "/tmp/pcsctap-occ-test.%d.comm", (int)getpid());
	unlink(f->path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(f->listen_fd, 0);
	memcpy(addr.sun_path, f->path, strlen(f->path) + 1);
	cr_assert_eq(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(f->listen_fd, 4), 0);
	cr_assert_eq(pipe(f->stop), 0);
	cr_assert_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	cr_assert_eq(write(f->stop[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	close(f->stop[0]);
	close(f->stop[1]);
	unlink(f->path);
}

static struct slot slot;

/* A slot named as pcscd names "Bed" (name=), its card at *card. */
static void
slot_start_named(int *card, const char *name)
{
	struct devopts o;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	devopts_default(&o);
	o.markers = true;
	snprintf(o.name, sizeof(o.name), "%s", name);
	slot_init_with_fd(&slot, sv[0], &o);
	*card = sv[1];
}

static void
slot_start(int *card)
{
	slot_start_named(card, "Bed");
}

/* The next marker at the card: its decoded body. */
static void
next_marker(int card, struct marker *m)
{
	uint8_t buf[MARKER_MAX_BODY];
	ssize_t n = vpcd_frame_read(card, buf, sizeof(buf), MARKER_WAIT_MS);

	cr_assert_eq(n, 1, "a marker frame (got %zd)", n);
	cr_assert_eq(buf[0], VPCD_CTRL_MARKER);
	n = vpcd_frame_read(card, buf, sizeof(buf), 1000);
	cr_assert_gt(n, 0);
	cr_assert_eq(marker_decode(m, buf, (size_t)n), 0);
	cr_assert(m->present & MARKER_HAS(MARKER_TAG_TIMESTAMP));
}

static void
expect_marker(int card, uint8_t event, int handles)
{
	struct marker m;

	next_marker(card, &m);
	cr_expect_eq(m.event, event, "event 0x%02x, want 0x%02x", m.event, event);
	if (handles < 0) {
		cr_expect_not(m.present & MARKER_HAS(MARKER_TAG_HANDLES), "no count");
	} else {
		cr_expect(m.present & MARKER_HAS(MARKER_TAG_HANDLES));
		cr_expect_eq(m.handles, (uint32_t)handles);
	}
}

static bool
card_idle(int card)
{
	struct pollfd pfd = { card, POLLIN, 0 };

	return poll(&pfd, 1, 0) == 0;
}

static void
set_sharing(struct fake *f, int32_t sharing)
{
	__atomic_store_n(&f->sharing, sharing, __ATOMIC_RELEASE);
}

/* pcscd powers the card up (or resets it) or down, as IFDHPowerICC tells
 * the slot and the watcher (ifd.c). */
static void
power(bool on)
{
	slot_set_powered(&slot, on);
	if (on)
		occupancy_nudge(&slot);
}

/* The fake pcscd in @p mode saying @p sharing, the slot named @p name
 * (its card at *card) and the slot's watcher. */
static void
watch_start(struct fake *f, enum fake_mode mode, int32_t sharing, const char *name, int *card)
{
	fake_start(f, mode);
	set_sharing(f, sharing);
	slot_start_named(card, name);
	cr_assert_eq(occupancy_start(&slot, f->path), 0);
}

static void
watch_end(struct fake *f, int card)
{
	occupancy_stop(&slot);
	fake_stop(f);
	slot_close(&slot);
	close(card);
}

/* Up to 10 s for @p cond, which the watcher's thread makes true. */
#define WAIT_FOR(cond) \
	for (int wait_ = 0; wait_ < 1000 && !(cond); wait_++) \
		usleep(10000)

Test(occupancy, watcher_follows_pcscd, .timeout = 60)
{
	struct fake f;
	int card, connections;

	watch_start(&f, FAKE_NORMAL, 0, "Bed", &card);
	power(true);	/* polls fast */
	set_sharing(&f, 2);
	expect_marker(card, MARKER_READER_IN_USE, 2);
	/* Counted from here: a watcher that looked before the power-up found
	 * the card unpowered and free, and let its first connection go. */
	connections = __atomic_load_n(&f.connections, __ATOMIC_ACQUIRE);
	set_sharing(&f, -1);
	expect_marker(card, MARKER_READER_EXCLUSIVE, 1);
	set_sharing(&f, 1);
	expect_marker(card, MARKER_READER_SHARED, 1);
	set_sharing(&f, 0);
	expect_marker(card, MARKER_READER_FREE, 0);
	/* A first exclusive connect: in use, then exclusive. */
	set_sharing(&f, -1);
	expect_marker(card, MARKER_READER_IN_USE, 1);
	expect_marker(card, MARKER_READER_EXCLUSIVE, 1);
	set_sharing(&f, 0);
	expect_marker(card, MARKER_READER_FREE, 0);
	watch_end(&f, card);
	cr_expect_eq(__atomic_load_n(&f.connections, __ATOMIC_ACQUIRE), connections,
		     "one connection while the card is powered");
}

/* Unpowered and free, the watcher holds no connection to pcscd (one would
 * keep pcscd --auto-exit from exiting) and looks again once woken. */
Test(occupancy, idle_watcher_lets_pcscd_go, .timeout = 60)
{
	struct fake f;
	int card, queries;

	watch_start(&f, FAKE_NORMAL, 0, "Bed", &card);
	power(true);
	set_sharing(&f, 1);
	expect_marker(card, MARKER_READER_IN_USE, 1);
	cr_assert_eq(__atomic_load_n(&f.open, __ATOMIC_ACQUIRE), 1, "set-up: connected while in use");
	set_sharing(&f, 0);
	expect_marker(card, MARKER_READER_FREE, 0);
	power(false);
	WAIT_FOR(!__atomic_load_n(&f.open, __ATOMIC_ACQUIRE));
	cr_assert_eq(__atomic_load_n(&f.open, __ATOMIC_ACQUIRE), 0, "no connection while idle");
	queries = __atomic_load_n(&f.queries, __ATOMIC_ACQUIRE);
	usleep(100000);
	cr_expect_eq(__atomic_load_n(&f.queries, __ATOMIC_ACQUIRE), queries, "no look while idle");
	/* A control call (a DIRECT client, say) wakes it. */
	set_sharing(&f, 1);
	occupancy_nudge(&slot);
	expect_marker(card, MARKER_READER_IN_USE, 1);
	watch_end(&f, card);
}

Test(occupancy, apdu_before_pcscd_publishes, .timeout = 60)
{
	struct fake f;
	int card;

	watch_start(&f, FAKE_NORMAL, 0, "Bed", &card);
	/* An APDU comes to a powered card (an unpowered, free one is not watched). */
	power(true);
	/* pcscd still says free: the APDU proves a handle; in use, without a count. */
	occupancy_before_use(&slot);
	cr_assert_not(card_idle(card), "written before occupancy_before_use() returned");
	expect_marker(card, MARKER_READER_IN_USE, -1);
	/* pcscd never published a handle: the watcher tells the card it is free. */
	expect_marker(card, MARKER_READER_FREE, 0);
	/* Once pcscd publishes the handle: in use with the count; the APDUs add nothing. */
	set_sharing(&f, 1);
	expect_marker(card, MARKER_READER_IN_USE, 1);
	occupancy_before_use(&slot);
	occupancy_before_use(&slot);
	cr_expect(card_idle(card));
	watch_end(&f, card);
}

Test(occupancy, reader_not_published, .timeout = 60)
{
	struct fake f;
	int card;

	/* name= that pcscd does not publish */
	watch_start(&f, FAKE_NORMAL, 1, "Nobody", &card);
	power(true);
	WAIT_FOR(__atomic_load_n(&f.queries, __ATOMIC_ACQUIRE) >= 3);
	cr_assert_geq(__atomic_load_n(&f.queries, __ATOMIC_ACQUIRE), 3, "set-up: it asked");
	/* No free could follow an in-use for a reader it cannot find: nothing. */
	occupancy_before_use(&slot);
	cr_expect(card_idle(card));
	watch_end(&f, card);
}

Test(occupancy, no_pcscd_yet, .timeout = 60)
{
	struct fake f;
	int card;

	slot_start(&card);
	/* Nothing serves the path yet: the APDU still gets in use first. */
	cr_assert_eq(occupancy_start(&slot, "/tmp/pcsctap-occ-test.nobody.comm"), 0);
	occupancy_before_use(&slot);
	expect_marker(card, MARKER_READER_IN_USE, -1);
	occupancy_stop(&slot);
	/* pcscd serving later: the watcher connects when it does. */
	fake_start(&f, FAKE_NORMAL);
	cr_assert_eq(occupancy_start(&slot, f.path), 0);
	power(true);
	set_sharing(&f, 1);
	expect_marker(card, MARKER_READER_IN_USE, 1);
	watch_end(&f, card);
}

/* pcscd answers oddly: occupancy off for the slot, nothing sent, no retry. */
static void
odd_pcscd(enum fake_mode mode)
{
	struct fake f;
	int card;

	watch_start(&f, mode, 1, "Bed", &card);
	power(true);
	/* The watcher gives up at once: wait for the one connection to end. */
	WAIT_FOR(__atomic_load_n(&f.connections, __ATOMIC_ACQUIRE));
	cr_assert_eq(__atomic_load_n(&f.connections, __ATOMIC_ACQUIRE), 1, "set-up: it connected");
	occupancy_before_use(&slot);
	usleep(200000);
	cr_expect(card_idle(card), "nothing reaches the card");
	cr_expect_eq(__atomic_load_n(&f.connections, __ATOMIC_ACQUIRE), 1, "no second try");
	/* The slot itself still works. */
	cr_expect_eq(slot_marker(&slot, (const uint8_t[]){ 1, 6 }, 2), 0);
	watch_end(&f, card);
}

Test(occupancy, short_answer_turns_it_off, .timeout = 60)
{
	odd_pcscd(FAKE_SHORT);
}

Test(occupancy, other_protocol_version_turns_it_off, .timeout = 60)
{
	odd_pcscd(FAKE_OLD_VERSION);
}

Test(occupancy, stop_with_a_silent_pcscd, .timeout = 60)
{
	struct fake f;
	int card;

	watch_start(&f, FAKE_SILENT, 0, "Bed", &card);
	power(true);
	WAIT_FOR(__atomic_load_n(&f.connections, __ATOMIC_ACQUIRE));
	cr_assert_geq(__atomic_load_n(&f.connections, __ATOMIC_ACQUIRE), 1, "set-up: it connected");
	/* Each wait for pcscd is bounded: the stop returns (Criterion's timeout otherwise). */
	occupancy_stop(&slot);
	cr_expect(card_idle(card));
	fake_stop(&f);
	slot_close(&slot);
	close(card);
}
