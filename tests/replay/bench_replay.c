/*
 * bench_replay.c — the cost of `pcsctap replay` on a large trace:
 *
 *   bench_replay TRACE [READER] [N]
 *
 * Builds the index (time, and the peak RSS before and after), then
 * replays the first N (default 20000) recorded commands in recorded order:
 *   lookup:   replay_index_answer() per command, against the baseline of
 *             reading the same record back (replay_index_next());
 *   replayed: round trips through the real vpcd card side
 *             (replay_card_serve()) on a socketpair, against the
 *             baseline of a card that answers 9000 without a lookup.
 * Prints figures and ratios; never fails on time.
 */
#include "replay_card.h"
#include "replay_index.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A line of /proc/self/status in kB ("VmRSS", "VmHWM"). */
static long
status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtol(line + strlen(key) + 1, NULL, 10);
	}
	fclose(f);
	return v;
}

/* The first @p n recorded commands, copied out (the bench's own input). */
struct commands {
	uint8_t *bytes;
	size_t *off;
	size_t *len;
	size_t n;
};

static int
load_commands(struct replay_index *idx, size_t n, struct commands *c)
{
	struct replay_exchange ex;
	uint64_t cursor = 0;
	size_t cap = 0, used = 0;

	c->off = calloc(n, sizeof(*c->off));
	c->len = calloc(n, sizeof(*c->len));
	if (!c->off || !c->len)
		return -ENOMEM;
	c->n = 0;
	while (c->n < n && replay_index_next(idx, &cursor, &ex) == 1) {
		if (used + ex.cmd_len > cap) {
			uint8_t *nb;

			cap = cap ? 2 * cap : 65536;
			nb = realloc(c->bytes, cap);
			if (!nb)
				return -ENOMEM;
			c->bytes = nb;
		}
		memcpy(c->bytes + used, ex.cmd, ex.cmd_len);
		c->off[c->n] = used;
		c->len[c->n++] = ex.cmd_len;
		used += ex.cmd_len;
	}
	return 0;
}

struct card_thread {
	struct replay_card *card;	/* NULL: the baseline card */
	int fd;
};

/* The baseline: the same framing, 9000 for every APDU, no lookup. */
static void
serve_fixed(int fd)
{
	static const uint8_t ok[] = { 0x90, 0x00 };
	uint8_t *msg = malloc(VPCD_FRAME_MAX);

	while (msg && vpcd_frame_read(fd, msg, VPCD_FRAME_MAX, -1) >= 0) {
		if (vpcd_frame_write(fd, ok, sizeof(ok)) < 0)
			break;
	}
	free(msg);
}

static void *
card_main(void *arg)
{
	struct card_thread *t = arg;

	if (t->card)
		replay_card_serve(t->card, t->fd);
	else
		serve_fixed(t->fd);
	close(t->fd);
	return NULL;
}

/* Round trips of every command through a card on a socketpair: ns each. */
static double
round_trips(struct replay_card *card, const struct commands *c)
{
	struct card_thread t = { .card = card };
	uint8_t *answer = malloc(VPCD_FRAME_MAX);
	pthread_t th;
	int sv[2];
	int64_t t0;
	size_t done = 0;

	if (!answer || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	t.fd = sv[1];
	pthread_create(&th, NULL, card_main, &t);
	t0 = trace_mono_ns();
	for (; done < c->n; done++) {
		if (vpcd_frame_write(sv[0], c->bytes + c->off[done], c->len[done]) < 0 ||
		    vpcd_frame_read(sv[0], answer, VPCD_FRAME_MAX, 10000) < 2)
			break;
	}
	t0 = trace_mono_ns() - t0;
	close(sv[0]);
	pthread_join(th, NULL);
	free(answer);
	return done == c->n ? (double)t0 / (double)done : -1;
}

int
main(int argc, char **argv)
{
	struct replay_select sel = { .tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp" };
	struct replay_card card = { .unmatched_sw = { 0x6D, 0x00 }, .ready_fd = -1 };
	struct commands cmds = { 0 };
	struct replay_counts counts;
	struct replay_info info;
	struct trace_reader *r;
	struct replay_exchange ex;
	uint8_t *resp = malloc(REPLAY_RESPONSE_MAX);
	char err[256];
	size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 20000, resp_len;
	long rss0, hwm_built;
	int64_t t, t_read, t_answer, id;
	double rt_replay, rt_fixed;
	int rc;

	if (argc < 2 || !resp) {
		fprintf(stderr, "usage: bench_replay TRACE [READER] [N]\n");
		return 2;
	}
	sel.reader = argc > 2 && argv[2][0] ? argv[2] : NULL;
	rc = trace_reader_open(&r, argv[1], err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "bench_replay: %s\n", err);
		return 1;
	}
	rss0 = status_kb("VmHWM");
	t = trace_mono_ns();
	rc = replay_index_build(&card.idx, r, &sel, &info, err, sizeof(err));
	t = trace_mono_ns() - t;
	if (rc < 0) {
		fprintf(stderr, "bench_replay: build: %d %s\n", rc, err);
		return 1;
	}
	hwm_built = status_kb("VmHWM");
	printf("trace %s: %llu exchanges indexed in %.2f s (%.0f ns each)\n", argv[1],
	       (unsigned long long)info.n_exchanges, (double)t / 1e9,
	       (double)t / (double)info.n_exchanges);
	if (load_commands(card.idx, n, &cmds) < 0)
		return 1;

	/* Baseline: read each record back; then answer each command. */
	{
		uint64_t cursor = 0;

		t_read = trace_mono_ns();
		for (size_t i = 0; i < cmds.n && replay_index_next(card.idx, &cursor, &ex) == 1; i++)
			;
		t_read = trace_mono_ns() - t_read;
	}
	t_answer = trace_mono_ns();
	for (size_t i = 0; i < cmds.n; i++) {
		if (replay_index_answer(card.idx, cmds.bytes + cmds.off[i], cmds.len[i],
					resp, &resp_len, &id) <= 0) {
			fprintf(stderr, "bench_replay: command %zu not answered\n", i);
			return 1;
		}
	}
	t_answer = trace_mono_ns() - t_answer;
	replay_index_counts(card.idx, &counts);
	printf("lookup: %.0f ns per command (%zu commands, %llu in context), "
	       "reading the record alone %.0f ns: ratio %.2f\n",
	       (double)t_answer / (double)cmds.n, cmds.n, (unsigned long long)counts.in_context,
	       (double)t_read / (double)cmds.n, (double)t_answer / (double)(t_read ? t_read : 1));

	replay_index_power(card.idx);
	rt_replay = round_trips(&card, &cmds);
	rt_fixed = round_trips(NULL, &cmds);
	if (rt_replay < 0 || rt_fixed < 0) {
		fprintf(stderr, "bench_replay: a round trip failed\n");
		return 1;
	}
	printf("replayed: %.0f APDUs/s (%.1f us each) through the vpcd card side; "
	       "a card answering 9000 without lookup: %.0f APDUs/s: ratio %.2f\n",
	       1e9 / rt_replay, rt_replay / 1e3, 1e9 / rt_fixed, rt_replay / rt_fixed);
	printf("memory: peak RSS %ld kB before the index, %ld kB after building it, %ld kB at the end\n",
	       rss0, hwm_built, status_kb("VmHWM"));
	replay_index_free(card.idx);
	trace_reader_close(r);
	free(cmds.bytes);
	free(cmds.off);
	free(cmds.len);
	free(resp);
	return 0;
}
