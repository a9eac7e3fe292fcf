/*
 * bench_writer.c — throughput and caller-side cost of the trace writer.
 *
 * Prints: sustained calls/s written with 5-byte and 261-byte APDUs (the
 * producer waits when the queue is half full, so nothing is dropped and the
 * figure is the writer's rate); median and p99 of one enqueue (the copy
 * into the mapped journal) on the caller's thread; peak RSS and the
 * journal's peak; the time of the
 * sessions view on a 1M-call trace; and memory while streaming that trace.
 * Wall-clock rates depend on what else the machine runs, so each run also
 * prints the load average and the CPU time the writer thread spent per
 * call (process CPU time minus the producing thread's), which does not.
 * Targets (2 cores): >= 300,000 calls/s small, enqueue median <= 300 ns,
 * p99 <= 2 us.
 * Usage: bench_writer [calls]   (default 1,000,000)
 */
#include "trace.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6))
			v = strtol(line + 6, NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

static long
peak_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* CPU time (user + system) in ns of the process or of the calling thread. */
static int64_t
cpu_ns(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* A session: Connect, n Transmits, Disconnect. */
static void
fill(struct trace_call *c, int fn, int64_t i, uint64_t card, const uint8_t *cmd,
     size_t cmd_len, const uint8_t *rsp, size_t rsp_len)
{
	memset(c, 0, sizeof(*c));
	c->fn = fn;
	c->tid = 1;
	c->t_enter_ns = now_ns();
	c->t_return_ns = c->t_enter_ns + 500;
	c->wall_ns = i;
	c->present = TRACE_HAS_CARD;
	c->card = card;
	if (fn == TRACE_FN_SCardTransmit) {
		c->present |= TRACE_HAS_SEND_PCI | TRACE_HAS_RECV_PCI;
		c->send_pci = 2;
		c->recv_pci = 2;
		c->in.data = cmd;
		c->in.len = cmd_len;
		c->out.data = rsp;
		c->out.len = rsp_len;
	} else if (fn == TRACE_FN_SCardConnect) {
		c->present |= TRACE_HAS_CONTEXT | TRACE_HAS_SHARE_MODE |
			      TRACE_HAS_PREFERRED_PROTOCOLS | TRACE_HAS_ACTIVE_PROTOCOL;
		c->reader = "Virtual PCD 00 00";
		c->share_mode = 2;
		c->preferred_protocols = 3;
		c->active_protocol = 2;
	} else if (fn == TRACE_FN_SCardDisconnect) {
		c->present |= TRACE_HAS_DISPOSITION;
	}
}

static void
run(const char *path, int64_t n, size_t apdu, int64_t *lat, int64_t nlat)
{
	/* A journal that holds the producer's lead of 30,000 big calls. */
	struct trace_writer_options opt = { .role = "bench", .queue_max_bytes = 64 << 20 };
	struct trace_writer *w = NULL;
	struct trace_writer_stats s;
	uint8_t cmd[300], rsp[300];
	struct trace_call c;
	int64_t t0, t1, t2, proc0, self0, writer_cpu, self_cpu;
	double load[1] = { -1 };
	uint64_t card = 1;

	memset(cmd, 0xa5, sizeof(cmd));
	memset(rsp, 0x5a, sizeof(rsp));
	unlink(path);
	getloadavg(load, 1);
	proc0 = cpu_ns(RUSAGE_SELF);
	self0 = cpu_ns(RUSAGE_THREAD);
	if (trace_writer_open(&w, path, &opt) < 0)
		exit(1);
	t0 = now_ns();
	for (int64_t i = 0; i < n; i++) {
		int fn = TRACE_FN_SCardTransmit;

		if (i % 100 == 0)
			fn = TRACE_FN_SCardConnect;
		else if (i % 100 == 99)
			fn = TRACE_FN_SCardDisconnect;
		if (fn == TRACE_FN_SCardConnect)
			card++;
		fill(&c, fn, i, card, cmd, apdu, rsp, apdu > 5 ? 258 : 2);
		if (lat && i < nlat) {
			t1 = now_ns();
			trace_write_call(w, &c);
			t2 = now_ns();
			lat[i] = t2 - t1;
		} else {
			trace_write_call(w, &c);
		}
		/* Keep the queue below half: measure the writer, drop nothing. */
		if ((i & 1023) == 0) {
			for (;;) {
				trace_writer_get_stats(w, &s);
				if (s.enqueued - s.written < 30000)
					break;
				usleep(200);
			}
		}
	}
	trace_writer_flush(w, 600000);
	t1 = now_ns();
	trace_writer_get_stats(w, &s);
	trace_writer_close(w);
	/* The writer thread has exited: its time is in the process's. */
	self_cpu = cpu_ns(RUSAGE_THREAD) - self0;
	writer_cpu = cpu_ns(RUSAGE_SELF) - proc0 - self_cpu;
	printf("  %3zu-byte APDUs: %" PRId64 " calls in %.2f s = %.0f calls/s sustained"
	       " (load %.2f; written %" PRIu64 ", dropped %" PRIu64 ", %" PRIu64 " commits,"
	       " queue peak %zu events / %.1f MiB)\n",
	       apdu, n, (t1 - t0) / 1e9, n / ((t1 - t0) / 1e9), load[0], s.written, s.dropped,
	       s.commits, s.queue_peak_events, s.queue_peak_bytes / 1048576.0);
	printf("      CPU per call: writer thread %.0f ns (= %.0f calls/s of one core),"
	       " producer %.0f ns\n", (double)writer_cpu / n, n / (writer_cpu / 1e9),
	       (double)self_cpu / n);
}

static double
time_sql(const char *path, const char *sql, int64_t *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t t0 = now_ns();

	*out = -1;
	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (now_ns() - t0) / 1e9;
}

int
main(int argc, char **argv)
{
	int64_t n = argc > 1 ? strtoll(argv[1], NULL, 10) : 1000000;
	int64_t nlat = 200000, overhead, v;
	char dir[] = "/tmp/pcsctap-bench-XXXXXX";
	char path[256];
	int64_t *lat;
	long rss0;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	lat = calloc((size_t)nlat, sizeof(*lat));
	if (!lat)
		return 1;
	rss0 = rss_kib();
	printf("pcsctap trace writer benchmark (%" PRId64 " calls per run, %ld CPUs)\n",
	       n, sysconf(_SC_NPROCESSORS_ONLN));
	run(path, n, 261, NULL, 0);
	run(path, n, 5, lat, nlat);

	/* Cost of the clock reads themselves, subtracted from the samples. */
	for (int64_t i = 0; i < 1000; i++) {
		int64_t a = now_ns();

		lat[i] = now_ns() - a;
	}
	qsort(lat, 1000, sizeof(*lat), cmp64);
	overhead = lat[500];
	run(path, n, 5, lat, nlat);
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp64);
	printf("  enqueue on the caller's thread (5-byte APDU, %" PRId64 " samples, clock"
	       " overhead %" PRId64 " ns removed): median %" PRId64 " ns, p99 %" PRId64 " ns,"
	       " max %" PRId64 " ns\n", nlat, overhead, lat[nlat / 2] - overhead,
	       lat[nlat * 99 / 100] - overhead, lat[nlat - 1] - overhead);
	printf("  memory: RSS at start %ld KiB, peak RSS %ld KiB (bound: the journal mapping,"
	       " 64 MiB here, 8 MiB by default + SQLite page cache ~2 MiB + thread stack)\n",
	       rss0, peak_kib());
	{
		double t;

		t = time_sql(path, "SELECT count(*) FROM (SELECT * FROM sessions)", &v);
		printf("  sessions view on the %" PRId64 "-call trace: %.3f s (%" PRId64
		       " sessions)\n", n, t, v);
		t = time_sql(path, "SELECT count(*) FROM (SELECT * FROM transactions)", &v);
		printf("  transactions view: %.3f s (%" PRId64 " rows)\n", t, v);
		t = time_sql(path, "SELECT count(*) FROM (SELECT * FROM apdus)", &v);
		printf("  apdus view: %.3f s (%" PRId64 " rows)\n", t, v);
	}
	{
		struct trace_reader *r = NULL;
		struct trace_iter *it = NULL;
		struct trace_call_row row;
		int64_t k = 0, t0 = now_ns();
		long before = rss_kib(), mid = 0;

		if (trace_reader_open(&r, path, NULL, 0) == 0 && trace_iter_calls(r, NULL, &it) == 0) {
			while (trace_iter_call_next(it, &row) == 1) {
				if (++k == n / 10)
					mid = rss_kib();
			}
		}
		printf("  streaming all calls in time order: %" PRId64 " rows in %.2f s;"
		       " RSS %ld KiB before, %ld KiB at 10%%, %ld KiB at the end\n",
		       k, (now_ns() - t0) / 1e9, before, mid, rss_kib());
		trace_iter_end(it);
		trace_reader_close(r);
	}
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench.db-shm", dir);
	unlink(path);
	rmdir(dir);
	free(lat);
	return 0;
}
