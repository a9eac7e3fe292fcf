/*
 * test_driver_unit.c — unit tests of the driver's parts without pcscd:
 * DEVICENAME options, part 10 answers, slot exchanges against a card
 * played by a thread on a socketpair, and presence_wait() on loopback.
 */
#include "driver.h"
#include "wire.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

Test(devicename, vpcd_forms)
{
	struct devopts o;
	char err[160];

	cr_assert_eq(devopts_parse(&o, "/dev/null:0x8C7B", err, sizeof(err)), 0);
	cr_expect_eq(o.port, 0x8C7B);
	cr_expect_str_empty(o.host);
	cr_expect_str_eq(o.listen, "127.0.0.1");
	cr_expect_not(o.markers);
	cr_expect_eq(o.timeout_ms, DRIVER_DEFAULT_TIMEOUT_MS);
	cr_expect_not(o.presence_poll);

	cr_assert_eq(devopts_parse(&o, "card.example:35963", err, sizeof(err)), 0);
	cr_expect_str_eq(o.host, "card.example");
	cr_expect_eq(o.port, 35963);

	cr_assert_eq(devopts_parse(&o, "/dev/null", err, sizeof(err)), 0);
	cr_expect_eq(o.port, DRIVER_DEFAULT_PORT);
}

Test(devicename, options)
{
	struct devopts o;
	char err[160];

	cr_assert_eq(devopts_parse(&o, "/dev/null:4000:markers=on:listen=::1:trace=/tmp/a:b.db:timeout=250:name=Bed 1",
				   err, sizeof(err)), 0, "%s", err);
	cr_expect(o.markers);
	cr_expect_str_eq(o.listen, "::1");
	cr_expect_str_eq(o.trace, "/tmp/a:b.db");
	cr_expect_eq(o.timeout_ms, 250);
	cr_expect_str_eq(o.name, "Bed 1");

	cr_assert_eq(devopts_parse(&o, "/dev/null:4000:markers=off", err, sizeof(err)), 0);
	cr_expect_not(o.markers);

	cr_assert_eq(devopts_parse(&o, "/dev/null:4000:presence=poll", err, sizeof(err)), 0);
	cr_expect(o.presence_poll);
	cr_assert_eq(devopts_parse(&o, "/dev/null:4000:presence=event", err, sizeof(err)), 0);
	cr_expect_not(o.presence_poll);
}

Test(devicename, rejects)
{
	static const char *const bad[] = {
		"/dev/null:", "/dev/null:0", "/dev/null:65535", "/dev/null:99999", "/dev/null:12x",
		"/dev/null:4000:markers=maybe", "/dev/null:4000:colour=red", "/dev/null:4000:timeout=1",
		"/dev/null:4000:timeout=", "/dev/null:4000:listen=", ":4000",
		"/dev/null:4000:presence=", "/dev/null:4000:presence=polling",
	};
	struct devopts o;
	char err[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(devopts_parse(&o, bad[i], err, sizeof(err)), -EINVAL, "%s", bad[i]);
		cr_expect_str_not_empty(err, "%s has a reason", bad[i]);
	}
}

Test(features, answer)
{
	uint8_t buf[64];
	ssize_t n;

	n = features_answer(false, 0, buf, sizeof(buf));
	cr_assert_eq(n, 6);
	cr_expect_eq(buf[0], 0x12);
	cr_expect_eq(buf[1], 4);
	cr_expect_eq((uint32_t)buf[2] << 24 | buf[3] << 16 | buf[4] << 8 | buf[5],
		     DRIVER_IOCTL_TLV_PROPERTIES);
	n = features_answer(true, 0, buf, sizeof(buf));
	cr_assert_eq(n, 12);
	cr_expect_eq(buf[6], MARKER_FEATURE_TAG);
	cr_expect_eq((uint32_t)buf[8] << 24 | buf[9] << 16 | buf[10] << 8 | buf[11],
		     MARKER_CONTROL_CODE);
	cr_expect_eq(features_answer(true, 0, buf, 11), -ENOBUFS);

	n = features_tlv_properties(buf, sizeof(buf));
	cr_assert_gt(n, 0);
	/* Walk the TLVs: dwMaxAPDUDataSize is there, little-endian. */
	for (ssize_t p = 0; p + 2 <= n; p += 2 + buf[p + 1]) {
		if (buf[p] == 0x0A) {
			uint32_t v = buf[p + 2] | buf[p + 3] << 8 | buf[p + 4] << 16 |
				     (uint32_t)buf[p + 5] << 24;

			cr_expect_eq(v, DRIVER_MAX_APDU_DATA);
			return;
		}
	}
	cr_assert_fail("no dwMaxAPDUDataSize");
}

/* A scripted card: answers requests from a table of raw byte strings. */
struct card_script {
	int fd;
	const uint8_t *answers[8];
	size_t lens[8];
	size_t n;
	uint8_t got[8][600];
	ssize_t got_len[8];
};

static void *
card_thread(void *arg)
{
	struct card_script *c = arg;

	for (size_t i = 0; i < c->n; i++) {
		c->got_len[i] = vpcd_frame_read(c->fd, c->got[i], sizeof(c->got[i]), 5000);
		if (c->got_len[i] < 0)
			break;
		if (c->lens[i] && write(c->fd, c->answers[i], c->lens[i]) < 0)
			break;
	}
	return NULL;
}

static struct slot slot;

static void
start(struct card_script *c, int timeout_ms, pthread_t *t)
{
	struct devopts o;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	devopts_default(&o);
	o.timeout_ms = timeout_ms;
	slot_init_with_fd(&slot, sv[0], &o);
	c->fd = sv[1];
	pthread_create(t, NULL, card_thread, c);
}

Test(slot, exchanges)
{
	static const uint8_t atr[] = { 0, 5, 0x3B, 0x80, 0x80, 0x01, 0x01 };
	static const uint8_t sw[] = { 0, 2, 0x90, 0x00 };
	struct card_script c = {
		.answers = { NULL, atr, sw, NULL },
		.lens = { 0, sizeof(atr), sizeof(sw), 0 },
		.n = 4,
	};
	uint8_t buf[64], body[] = { 1, 6, 8, 4, 0, 0, 0, 2 };
	uint8_t apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };
	pthread_t t;

	start(&c, 2000, &t);
	cr_assert_eq(slot_control(&slot, VPCD_CTRL_ON), 0);
	cr_assert_eq(slot_get_atr(&slot, buf, sizeof(buf), true), 5);
	cr_expect_arr_eq(buf, atr + 2, 5);
	cr_assert_eq(slot_transmit(&slot, apdu, sizeof(apdu), buf, sizeof(buf)), 2);
	cr_assert_eq(slot_marker(&slot, body, sizeof(body)), 0);
	pthread_join(t, NULL);
	cr_expect_eq(c.got_len[0], 1);
	cr_expect_eq(c.got[0][0], VPCD_CTRL_ON);
	cr_expect_eq(c.got[1][0], VPCD_CTRL_ATR);
	cr_expect_eq(c.got_len[2], 5);
	cr_expect_eq(c.got_len[3], 1);
	cr_expect_eq(c.got[3][0], VPCD_CTRL_MARKER);
	/* The body follows as its own frame. */
	cr_expect_eq(vpcd_frame_read(c.fd, buf, sizeof(buf), 1000), (ssize_t)sizeof(body));
	cr_expect_arr_eq(buf, body, sizeof(body));
	slot_close(&slot);
	close(c.fd);
}

Test(slot, hostile_answers_drop_the_card)
{
	static const uint8_t zero[] = { 0, 0 };
	static const uint8_t big_atr[] = { 0, 34 };	/* and nothing after: times out */
	struct card_script c = { .answers = { zero }, .lens = { sizeof(zero) }, .n = 1 };
	uint8_t buf[64];
	pthread_t t;

	start(&c, 200, &t);
	cr_expect_lt(slot_get_atr(&slot, buf, sizeof(buf), true), 0, "empty ATR");
	cr_expect_eq(slot.fd, -1, "dropped");
	pthread_join(t, NULL);
	slot_close(&slot);
	close(c.fd);

	c = (struct card_script){ .answers = { big_atr }, .lens = { sizeof(big_atr) }, .n = 1 };
	start(&c, 200, &t);
	cr_expect_lt(slot_get_atr(&slot, buf, sizeof(buf), true), 0, "oversized ATR");
	cr_expect_eq(slot.fd, -1, "dropped");
	pthread_join(t, NULL);
	slot_close(&slot);
	close(c.fd);
}

Test(slot, unasked_bytes_and_close_are_noticed)
{
	struct card_script c = { .n = 0 };
	uint8_t buf[8];
	pthread_t t;

	start(&c, 200, &t);
	pthread_join(t, NULL);
	cr_assert_eq(write(c.fd, "\x00\x02\x90\x00", 4), 4);
	cr_expect_eq(slot_control(&slot, VPCD_CTRL_ON), -ECONNRESET);
	cr_expect_eq(slot.fd, -1);
	cr_expect_eq(slot_get_atr(&slot, buf, sizeof(buf), true), -ENOTCONN);
	slot_close(&slot);
	close(c.fd);
}

/* The second half of an answer, sent a moment later by a thread. */
struct late_write {
	int fd;
	const uint8_t *bytes;
	size_t len;
};

static void *
write_late(void *arg)
{
	struct late_write *lw = arg;

	usleep(50 * 1000);
	cr_assert_eq(write(lw->fd, lw->bytes, lw->len), (ssize_t)lw->len);
	return NULL;
}

Test(frames, answer_in_one_read_or_in_pieces)
{
	static const uint8_t whole[] = { 0x00, 0x02, 0x90, 0x00 };
	static const uint8_t rest[] = { 0x03, 0x61, 0x10, 0x00 };
	struct late_write lw;
	uint8_t buf[16];
	pthread_t t;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Whole: one scatter read. */
	cr_assert_eq(write(sv[1], whole, sizeof(whole)), (ssize_t)sizeof(whole));
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, sizeof(buf), 1000), 2);
	cr_assert_eq(buf[0], 0x90);
	/* The header split after its first byte, the rest later. */
	cr_assert_eq(write(sv[1], "\x00", 1), 1);
	lw = (struct late_write){ sv[1], rest, sizeof(rest) };
	cr_assert_eq(pthread_create(&t, NULL, write_late, &lw), 0);
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, sizeof(buf), 2000), 3);
	pthread_join(t, NULL);
	cr_assert_arr_eq(buf, rest + 1, 3);
	/* Too long for the buffer: discarded, the stream stays in step. */
	cr_assert_eq(write(sv[1], "\x00\x03\x01\x02\x03", 5), 5);
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, 2, 1000), -EMSGSIZE);
	cr_assert_eq(write(sv[1], whole, sizeof(whole)), (ssize_t)sizeof(whole));
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, sizeof(buf), 1000), 2);
	/* Silence: bounded. */
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, sizeof(buf), 100), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

Test(frames, bytes_after_the_answer_break_the_protocol)
{
	static const uint8_t two[] = { 0x00, 0x02, 0x90, 0x00, 0x00, 0x02, 0x90, 0x00 };
	uint8_t buf[16];
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(write(sv[1], two, sizeof(two)), (ssize_t)sizeof(two));
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, sizeof(buf), 1000), -EPROTO);
	close(sv[1]);
	cr_assert_eq(vpcd_frame_read_answer(sv[0], buf, sizeof(buf), 1000), -ECONNRESET);
	close(sv[0]);
}

/* A loopback port that was free a moment ago. */
static unsigned
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int
dial_loopback(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

Test(presence, silent_connection_first_real_card_wins)
{
	static const uint8_t atr[] = { 0, 5, 0x3B, 0x80, 0x80, 0x01, 0x01 };
	struct devopts o;
	struct slot s;
	uint8_t buf[8];
	int silent, good;

	devopts_default(&o);
	o.port = free_port();
	cr_assert_eq(slot_open(&s, 0, 0, &o), 0);
	silent = dial_loopback(o.port);
	/* The silent connection is in its handshake: it has been asked. */
	presence_wait(&s, 100);
	cr_assert_eq(vpcd_frame_read(silent, buf, sizeof(buf), 1000), 1);
	cr_expect_eq(buf[0], VPCD_CTRL_ATR);
	cr_expect_eq(s.fd, -1, "no card yet");

	good = dial_loopback(o.port);
	/* Each wait returns within 0.4 s: loop until the good card is taken. */
	for (int i = 0; i < 40 && s.fd < 0; i++) {
		presence_wait(&s, 50);
		if (vpcd_frame_read(good, buf, sizeof(buf), 0) == 1)
			cr_assert_eq(write(good, atr, sizeof(atr)), (ssize_t)sizeof(atr));
	}
	cr_assert_geq(s.fd, 0, "the answering card is the slot's card");
	cr_expect_eq(s.atr_len, 5);
	cr_expect_arr_eq(s.atr, atr + 2, 5);
	/* The silent one was closed when the real card answered. */
	cr_expect_eq(recv(silent, buf, 1, 0), 0);

	/* Not reported yet: the wait returns at once, and again after a stop. */
	presence_wait(&s, 5000);
	s.present = true;
	presence_stop(&s);
	presence_wait(&s, 5000);
	cr_expect_eq(s.stop_for, 0, "a stop ends one wait only");
	/* Between two waits of a powered card a stop is dropped (presence.c). */
	slot_set_powered(&s, true);
	presence_stop(&s);
	cr_expect_eq(s.stop_for, 0, "a stop between two waits of a powered card is dropped");
	slot_set_powered(&s, false);
	presence_stop(&s);
	cr_expect_eq(s.stop_for, s.wait_seq + 1, "unpowered: the stop is for the next wait");
	presence_wait(&s, 5000);
	cr_expect_eq(s.stop_for, 0, "and that wait took it");

	/* The card closes: the wait notices, with no message sent. */
	close(good);
	presence_wait(&s, 5000);
	cr_expect_not(slot_alive(&s));
	slot_close(&s);
	close(silent);
}
