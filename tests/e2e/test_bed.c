/*
 * test_bed.c — the test bed itself: stacks start, serve a client, stop
 * without leftovers, and two stacks running at once do not see each
 * other's traffic (Criterion runs these tests in parallel: --jobs 2; the
 * two tests prove they overlapped before they assert isolation).
 */
#include "bed.h"

#include <PCSC/winscard.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct bed bed;

static void
setup(void)
{
	static const char *const options[] = { "--card", "test", NULL };
	const char *why = bed_unavailable();

	if (why) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			cr_assert_fail("%s (CI=true: missing dependencies fail)", why);
		cr_skip_test("%s", why);
	}
	cr_assert_eq(bed_start(&bed, options), 0, "the stack starts");
}

static void
teardown(void)
{
	bed_stop(&bed);
}

/* Send one APDU whose data is this test's own tag; check only it arrives. */
static void
transmit_tagged(uint8_t tag)
{
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD protocol, len;
	uint8_t apdu[] = { 0x00, 0xCA, 0x00, tag, 0x00 }, resp[258];
	char hex[16], buf[4096];
	size_t mark;

	cr_assert_eq(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx), SCARD_S_SUCCESS);
	cr_assert_eq(SCardConnect(ctx, bed.reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1,
				  &card, &protocol), SCARD_S_SUCCESS);
	mark = bed_mark(&bed);
	for (int i = 0; i < 20; i++) {
		len = sizeof(resp);
		cr_assert_eq(SCardTransmit(card, SCARD_PCI_T1, apdu, sizeof(apdu), NULL, resp, &len),
			     SCARD_S_SUCCESS);
		cr_assert_eq(len, 2);
		cr_assert_eq(resp[0], 0x90);
	}
	cr_assert_eq(SCardDisconnect(card, SCARD_LEAVE_CARD), SCARD_S_SUCCESS);
	cr_assert_eq(SCardReleaseContext(ctx), SCARD_S_SUCCESS);

	snprintf(hex, sizeof(hex), "00CA00%02X00", tag);
	for (int i = 0; i < 20; i++) {
		cr_assert(bed_field(&bed, "APDU", mark, i, 2, buf, sizeof(buf)), "APDU %d arrived", i);
		cr_assert_str_eq(buf, hex, "only this stack's APDUs reach this card");
	}
	cr_assert_not(bed_field(&bed, "APDU", mark, 20, 2, buf, sizeof(buf)), "no foreign APDU: %s", buf);
}

/*
 * The two stacks overlap only if Criterion really runs both tests at
 * once.  Each test announces in a directory of this run (made before any
 * test starts, in the runner) that its stack is up, then that it is done,
 * and waits for the other's announcements: a test transmits only while
 * the other stack is up, and stops its own only after the other has
 * transmitted.  Run one at a time, they fail instead of passing vacuously.
 */
static const char *const rendezvous_files[] = { "first.up", "first.done", "second.up", "second.done" };
static char rendezvous[256];

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	const char *root = getenv("BED_ROOT");

	snprintf(rendezvous, sizeof(rendezvous), "%s/pcsctap-bed-overlap.XXXXXX",
		 root && *root ? root : "/tmp");
	if (mkdtemp(rendezvous))
		setenv("BED_RENDEZVOUS", rendezvous, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	char path[320];

	if (!getenv("BED_RENDEZVOUS"))
		return;
	for (size_t i = 0; i < sizeof(rendezvous_files) / sizeof(rendezvous_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", rendezvous, rendezvous_files[i]);
		unlink(path);
	}
	rmdir(rendezvous);
}

static void
announce(const char *self, const char *what)
{
	char path[320];
	FILE *f;

	cr_assert_not_null(getenv("BED_RENDEZVOUS"), "the run's rendezvous directory");
	snprintf(path, sizeof(path), "%s/%s.%s", getenv("BED_RENDEZVOUS"), self, what);
	f = fopen(path, "we");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fclose(f);
}

/* Wait, with a bound, for the other test's announcement. */
static void
await(const char *other, const char *what)
{
	const struct timespec tenth = { 0, 100 * 1000 * 1000 };
	char path[320];

	snprintf(path, sizeof(path), "%s/%s.%s", getenv("BED_RENDEZVOUS"), other, what);
	for (int i = 0; i < 400; i++) {
		if (access(path, F_OK) == 0)
			return;
		nanosleep(&tenth, NULL);
	}
	cr_assert_fail("%s_stack never announced '%s' within 40 s: the stacks did not overlap "
		       "(run with --jobs 2)", other, what);
}

static void
overlapping(const char *self, const char *other, uint8_t tag)
{
	announce(self, "up");
	await(other, "up");
	transmit_tagged(tag);
	announce(self, "done");
	await(other, "done");
}

Test(bed, first_stack, .init = setup, .fini = teardown, .timeout = 90)
{
	overlapping("first", "second", 0x11);
}

Test(bed, second_stack, .init = setup, .fini = teardown, .timeout = 90)
{
	overlapping("second", "first", 0x22);
}

/* The PID that stack.sh recorded for one of its processes ("pcscd", "card"). */
static int
recorded_pid(const char *name)
{
	char path[400], pid_text[32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.bedpid", bed.dir, name);
	f = fopen(path, "re");
	cr_assert_not_null(f, "%s", path);
	cr_assert(fgets(pid_text, sizeof(pid_text), f));
	fclose(f);
	return atoi(pid_text);
}

Test(bed, stop_leaves_nothing, .init = setup, .timeout = 60)
{
	char path[400];
	FILE *f;
	int pcscd = recorded_pid("pcscd"), card = recorded_pid("card");

	snprintf(path, sizeof(path), "%s/pcscd.comm", bed.dir);

	bed_stop(&bed);
	/* Stopped processes may linger as zombies of the shell that started them. */
	for (int pid_i = 0; pid_i < 2; pid_i++) {
		int pid = pid_i ? card : pcscd;
		char stat[64], state = 0;

		snprintf(stat, sizeof(stat), "/proc/%d/stat", pid);
		f = fopen(stat, "re");
		if (f) {
			cr_assert_eq(fscanf(f, "%*d %*s %c", &state), 1);
			fclose(f);
		}
		cr_assert(!f || state == 'Z', "process %d is gone", pid);
	}
	cr_assert_neq(access(path, F_OK), 0, "the socket is gone");
}
