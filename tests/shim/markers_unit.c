/*
 * markers_unit.c — shim/markers.c against a fake real library: feature
 * discovery (cached, retried, never cached as "no markers" when it failed),
 * delivery through the driver's real side channel when the fake pcscd
 * refuses SCardControl for another handle's transaction, and the order
 * and numbering of every client's markers at the card.
 *
 * The "card" is the far end of a socketpair that the driver's slot writes
 * to (proxy/slot.c, proxy/sidechannel.c): markers through SCardControl and
 * through the side channel arrive in one stream, in the order written.
 */
#include "shim.h"
#include "driver.h"
#include "wire.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READER "Test 00 00"

struct shim_real shim_real;
struct shim_config shim_config = { .markers = true };
struct trace_writer *shim_writer;

int64_t
shim_tid(void)
{
	return 1;
}

static const uint8_t atr[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };

static struct {
	struct slot slot;
	bool side;		/* the slot serves a side channel */
	int card;		/* the card's end */
	bool locked;		/* another handle holds a transaction */
	bool markers_on;	/* the feature list names markers */
	unsigned discoveries;	/* GET_FEATURE_REQUEST that reached the driver */
	unsigned controls;	/* marker SCardControls that reached the driver */
	const uint8_t *status_atr;	/* the ATR SCardGetStatusChange reports */
	char dir[64];
} fake;

static LONG
fake_control(SCARDHANDLE card, DWORD code, LPCVOID in, DWORD in_len, LPVOID out, DWORD cap,
	     LPDWORD returned)
{
	ssize_t n;
	int rc;

	*returned = 0;
	if (__atomic_load_n(&fake.locked, __ATOMIC_SEQ_CST))
		return SCARD_E_SHARING_VIOLATION;
	if (code == CM_IOCTL_GET_FEATURE_REQUEST) {
		fake.discoveries++;
		n = features_answer(fake.markers_on, sidechannel_token(&fake.slot), out, cap);
		if (n < 0)
			return SCARD_E_INSUFFICIENT_BUFFER;
		*returned = (DWORD)n;
		return SCARD_S_SUCCESS;
	}
	if (code != MARKER_CONTROL_CODE || !fake.markers_on)
		return SCARD_E_UNSUPPORTED_FEATURE;
	fake.controls++;
	pthread_mutex_lock(&fake.slot.lock);
	rc = slot_marker(&fake.slot, in, in_len);
	pthread_mutex_unlock(&fake.slot.lock);
	return rc < 0 ? SCARD_E_NOT_TRANSACTED : SCARD_S_SUCCESS;
}

static LONG
fake_establish(DWORD scope, LPCVOID r1, LPCVOID r2, LPSCARDCONTEXT ctx)
{
	*ctx = 1;
	return SCARD_S_SUCCESS;
}

static LONG
fake_release(SCARDCONTEXT ctx)
{
	return SCARD_S_SUCCESS;
}

static LONG
fake_status_change(SCARDCONTEXT ctx, DWORD timeout, SCARD_READERSTATE *rs, DWORD n)
{
	rs->dwEventState = SCARD_STATE_PRESENT | SCARD_STATE_CHANGED;
	rs->cbAtr = sizeof(atr);
	memcpy(rs->rgbAtr, fake.status_atr, sizeof(atr));
	return SCARD_S_SUCCESS;
}

static void
start_side(void)
{
	cr_assert_eq(sidechannel_start(&fake.slot, fake.dir), 0);
	fake.side = true;
}

static void
setup(void)
{
	struct devopts o;
	char csock[96];
	int sv[2];

	devopts_default(&o);
	o.markers = true;
	o.timeout_ms = 1000;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	slot_init_with_fd(&fake.slot, sv[0], &o);
	memcpy(fake.slot.atr, atr, sizeof(atr));
	fake.slot.atr_len = sizeof(atr);
	fake.card = sv[1];
	fake.markers_on = true;
	fake.status_atr = atr;
	strcpy(fake.dir, "/tmp/pcsctap-markers-unit.XXXXXX");
	cr_assert_not_null(mkdtemp(fake.dir));
	snprintf(csock, sizeof(csock), "%s/pcscd.comm", fake.dir);
	setenv("PCSCLITE_CSOCK_NAME", csock, 1);
	shim_side_reset();
	shim_real.SCardControl = fake_control;
	shim_real.SCardEstablishContext = fake_establish;
	shim_real.SCardReleaseContext = fake_release;
	shim_real.SCardGetStatusChange = fake_status_change;
	start_side();
}

static void
teardown(void)
{
	if (fake.side)
		sidechannel_stop(&fake.slot);
	slot_close(&fake.slot);
	close(fake.card);
	rmdir(fake.dir);
}

/* The next marker at the card, or false when none came within 200 ms. */
static bool
next_marker(struct marker *m)
{
	uint8_t buf[MARKER_MAX_BODY];
	ssize_t n = vpcd_frame_read(fake.card, buf, sizeof(buf), 200);

	if (n < 0)
		return false;
	cr_assert_eq(n, 1);
	cr_assert_eq(buf[0], VPCD_CTRL_MARKER);
	n = vpcd_frame_read(fake.card, buf, sizeof(buf), 200);
	cr_assert_gt(n, 1);
	cr_assert_eq(marker_decode(m, buf, (size_t)n), 0);
	return true;
}

static void
expect_marker(uint8_t event, SCARDHANDLE card, uint32_t seq)
{
	struct marker m;

	cr_assert(next_marker(&m), "no %s marker (seq %u) at the card", marker_event_name(event), seq);
	cr_expect_eq(m.event, event, "got %s, expected %s", marker_event_name(m.event),
		     marker_event_name(event));
	cr_expect_eq(m.handle, (uint32_t)card);
	cr_expect_eq(m.seq, seq);
	cr_expect_eq(m.pid, (uint32_t)getpid());
}

static void
expect_no_marker(void)
{
	struct marker m;

	cr_expect_not(next_marker(&m), "an unexpected %s marker", marker_event_name(m.event));
}

TestSuite(markers, .init = setup, .fini = teardown);

Test(markers, discovery_is_cached_per_reader)
{
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	shim_markers_before_disconnect(0x11, SCARD_LEAVE_CARD);
	shim_markers_forget(0x11);
	shim_markers_after_connect(0x12, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	expect_marker(MARKER_DISCONNECT, 0x11, 2);
	expect_marker(MARKER_CONNECT, 0x12, 1);
	cr_expect_eq(fake.discoveries, 1);
}

Test(markers, reader_without_the_feature_gets_nothing)
{
	fake.markers_on = false;
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	shim_markers_before_io(0x11);
	shim_markers_before_disconnect(0x11, SCARD_RESET_CARD);
	shim_markers_after_connect(0x12, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	expect_no_marker();
	cr_expect_eq(fake.controls, 0);
	/* The answer was "no markers": cached, not asked again. */
	cr_expect_eq(fake.discoveries, 1);
}

Test(markers, disconnect_during_anothers_transaction_goes_through_the_side_channel)
{
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	fake.locked = true;
	shim_markers_before_disconnect(0x11, SCARD_LEAVE_CARD);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	expect_marker(MARKER_DISCONNECT, 0x11, 2);
	expect_no_marker();
	cr_expect_eq(fake.controls, 1);
}

Test(markers, discovery_during_anothers_transaction_asks_the_side_channel)
{
	fake.locked = true;
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	shim_markers_after_begin(0x11);	/* cannot happen while locked, but must stay in order */
	fake.locked = false;
	shim_markers_before_end(0x11, SCARD_LEAVE_CARD);
	shim_markers_before_disconnect(0x11, SCARD_UNPOWER_CARD);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	expect_marker(MARKER_BEGIN_TRANSACTION, 0x11, 2);
	expect_marker(MARKER_END_TRANSACTION, 0x11, 3);
	expect_marker(MARKER_DISCONNECT, 0x11, 4);
	/* Learnt from the side channel: not cached, the next connect asks pcscd. */
	shim_markers_after_connect(0x12, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	expect_marker(MARKER_CONNECT, 0x12, 1);
	cr_expect_eq(fake.discoveries, 1);
}

Test(markers, failed_discovery_is_retried_and_markers_wait_in_order)
{
	static const uint8_t other_atr[sizeof(atr)] = { 0x3B, 0x00 };

	/* The side channel answers for another card: not this reader's. */
	fake.status_atr = other_atr;
	fake.locked = true;
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	/* A transmit that would not wait for the card does not wait here either. */
	setenv("PCSCLITE_NO_BLOCKING", "1", 1);
	shim_markers_before_io(0x11);
	unsetenv("PCSCLITE_NO_BLOCKING");
	expect_no_marker();
	fake.locked = false;
	/* Before the next transmit: discovery again, then the waiting connect. */
	shim_markers_before_io(0x11);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	shim_markers_before_disconnect(0x11, SCARD_LEAVE_CARD);
	expect_marker(MARKER_DISCONNECT, 0x11, 2);
	cr_expect_eq(fake.discoveries, 1);
}

Test(markers, never_discovered_client_sends_nothing_and_is_not_cached_as_plain)
{
	sidechannel_stop(&fake.slot);
	fake.side = false;
	fake.locked = true;
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	shim_markers_before_disconnect(0x11, SCARD_LEAVE_CARD);
	shim_markers_forget(0x11);
	expect_no_marker();
	fake.locked = false;
	shim_markers_after_connect(0x12, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	expect_marker(MARKER_CONNECT, 0x12, 1);
	cr_expect_eq(fake.discoveries, 1);
}

Test(markers, two_clients_interleave_each_numbered_from_one)
{
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	shim_markers_after_connect(0x22, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	shim_markers_after_begin(0x22);
	fake.locked = true;	/* 0x22 holds the card: 0x11's markers go around */
	shim_markers_after_reconnect(0x11, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD,
				     SCARD_PROTOCOL_T1);
	shim_markers_before_disconnect(0x11, SCARD_LEAVE_CARD);
	fake.locked = false;
	shim_markers_before_end(0x22, SCARD_LEAVE_CARD);
	shim_markers_before_disconnect(0x22, SCARD_LEAVE_CARD);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	expect_marker(MARKER_CONNECT, 0x22, 1);
	expect_marker(MARKER_BEGIN_TRANSACTION, 0x22, 2);
	expect_marker(MARKER_RECONNECT, 0x11, 2);
	expect_marker(MARKER_DISCONNECT, 0x11, 3);
	expect_marker(MARKER_END_TRANSACTION, 0x22, 3);
	expect_marker(MARKER_DISCONNECT, 0x22, 4);
	expect_no_marker();
}

Test(markers, side_channel_refuses_another_pid_a_wrong_token_and_bad_bodies)
{
	struct marker m = {
		.version = MARKER_VERSION,
		.event = MARKER_CONNECT,
		.present = MARKER_HAS(MARKER_TAG_PID) | MARKER_HAS(MARKER_TAG_SEQ),
		.pid = (uint32_t)getpid() + 1,
		.seq = 1,
	};
	struct shim_side_hello hello;
	uint8_t body[MARKER_MAX_BODY];
	ssize_t len;

	cr_assert_eq(shim_side_hello(READER, &hello), 0);
	cr_expect_eq(hello.code, MARKER_CONTROL_CODE);
	cr_expect_eq(hello.token, sidechannel_token(&fake.slot));
	cr_expect_eq(hello.atr_len, sizeof(atr));
	len = marker_encode(&m, body, sizeof(body));
	cr_assert_gt(len, 0);
	cr_expect_eq(shim_side_marker(READER, hello.token, body, (size_t)len), SIDE_NOT_YOURS);
	m.pid = (uint32_t)getpid();
	len = marker_encode(&m, body, sizeof(body));
	cr_expect_eq(shim_side_marker(READER, hello.token + 1, body, (size_t)len), SIDE_WRONG_TOKEN);
	cr_expect_eq(shim_side_marker(READER, hello.token, body, 1), SIDE_MALFORMED);
	body[0] = 7;	/* a version nobody knows */
	cr_expect_eq(shim_side_marker(READER, hello.token, body, (size_t)len), SIDE_MALFORMED);
	expect_no_marker();
	cr_expect_eq(shim_side_hello("Test 00 01", &hello), -ENOENT);
	cr_expect_eq(shim_side_hello("no numbers", &hello), -EINVAL);
}

Test(markers, side_channel_of_a_restarted_pcscd_is_asked_again)
{
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	/* A new driver instance: the cached token is stale. */
	sidechannel_stop(&fake.slot);
	start_side();
	fake.locked = true;
	shim_markers_before_disconnect(0x11, SCARD_LEAVE_CARD);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	expect_marker(MARKER_DISCONNECT, 0x11, 2);
	/* And the cache entry is gone: the next connect asks pcscd again. */
	fake.locked = false;
	shim_markers_after_connect(0x12, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	expect_marker(MARKER_CONNECT, 0x12, 1);
	cr_expect_eq(fake.discoveries, 2);
}

static void *
release_later(void *arg)
{
	usleep(100 * 1000);
	__atomic_store_n(&fake.locked, false, __ATOMIC_SEQ_CST);
	return NULL;
}

Test(markers, transmit_looks_for_the_free_card_as_the_real_one_would_wait)
{
	static const uint8_t other_atr[sizeof(atr)] = { 0x3B, 0x00 };
	pthread_t releaser;
	int64_t t0;

	fake.status_atr = other_atr;
	fake.locked = true;
	shim_markers_after_connect(0x11, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T1);
	cr_assert_eq(pthread_create(&releaser, NULL, release_later, NULL), 0);
	t0 = trace_mono_ns();
	shim_markers_before_io(0x11);
	/* It returned once the card was free (set-up: it did wait), marker first. */
	cr_expect_not(__atomic_load_n(&fake.locked, __ATOMIC_SEQ_CST));
	cr_expect_geq(trace_mono_ns() - t0, 50 * 1000000);
	expect_marker(MARKER_CONNECT, 0x11, 1);
	pthread_join(releaser, NULL);
}
