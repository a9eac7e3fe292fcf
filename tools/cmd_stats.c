/*
 * cmd_stats.c — `pcsctap stats`: per function count and latency
 * (total, mean, p50, p99) of the real calls beside the shim's own mean
 * time around them (calls.shim_ns), per process, and APDUs by INS and
 * by SW.
 *
 * Latencies go into log-scale histograms (1/16 of an octave, about 6 %)
 * so that memory stays constant however long the trace is.
 */
#include "apdu.h"
#include "commands.h"
#include "events.h"
#include "pcscnames.h"
#include "render.h"
#include "textout.h"
#include "viewopts.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define HIST_SUB 16
#define HIST_BUCKETS (HIST_SUB + 60 * HIST_SUB)

struct latency {
	uint64_t count;
	uint64_t errors;
	int64_t total_ns;
	int64_t max_ns;
	int64_t shim_ns;	/* the shim's own time around the real calls */
	uint32_t hist[HIST_BUCKETS];
};

struct proc_stat {
	int file;
	int64_t pid;
	uint64_t calls;
	uint64_t errors;
	uint64_t apdus;
	int64_t busy_ns;
};

struct stats {
	struct latency fn[TRACE_FN_MAX + 1];
	struct proc_stat *procs;
	size_t n_procs, cap_procs;
	/* [0] interindustry class, [1] proprietary: the INS means different things. */
	uint64_t ins[2][256];
	uint64_t *sw;		/* 65536 counters */
	uint64_t apdus;
	uint64_t calls;
};

static unsigned
bucket_of(int64_t ns)
{
	uint64_t v = ns > 0 ? (uint64_t)ns : 0;
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	if (e > 63 - 1)
		e = 62;
	return HIST_SUB + (e - 4) * HIST_SUB + (unsigned)((v >> (e - 4)) & (HIST_SUB - 1));
}

/* A value inside the bucket (its middle), as the percentile estimate. */
static int64_t
bucket_value(unsigned b)
{
	unsigned e, sub;

	if (b < HIST_SUB)
		return b;
	e = (b - HIST_SUB) / HIST_SUB + 4;
	sub = (b - HIST_SUB) % HIST_SUB;
	return (int64_t)(((uint64_t)(HIST_SUB + sub) << (e - 4)) + ((1ull << (e - 4)) >> 1));
}

static int64_t
percentile(const struct latency *l, double p)
{
	uint64_t rank = (uint64_t)(p * (double)l->count + 0.999999);
	uint64_t seen = 0;

	if (rank == 0)
		rank = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += l->hist[b];
		if (seen >= rank) {
			int64_t v = bucket_value(b);

			return v > l->max_ns ? l->max_ns : v;
		}
	}
	return l->max_ns;
}

static struct proc_stat *
proc_of(struct stats *st, int file, int64_t pid)
{
	for (size_t i = 0; i < st->n_procs; i++) {
		if (st->procs[i].pid == pid && st->procs[i].file == file)
			return &st->procs[i];
	}
	if (st->n_procs == st->cap_procs) {
		size_t cap = st->cap_procs ? 2 * st->cap_procs : 16;
		struct proc_stat *p = realloc(st->procs, cap * sizeof(*p));

		if (!p)
			return NULL;
		st->procs = p;
		st->cap_procs = cap;
	}
	memset(&st->procs[st->n_procs], 0, sizeof(st->procs[0]));
	st->procs[st->n_procs].file = file;
	st->procs[st->n_procs].pid = pid;
	return &st->procs[st->n_procs++];
}

static int
account(struct stats *st, const struct tap_event *ev)
{
	const struct trace_call *c = &ev->call->call;
	int64_t d = c->t_return_ns - c->t_enter_ns;
	struct proc_stat *p;

	st->calls++;
	if (c->fn >= 1 && c->fn <= TRACE_FN_MAX) {
		struct latency *l = &st->fn[c->fn];

		l->count++;
		l->errors += c->rv != 0;
		l->total_ns += d;
		l->shim_ns += c->shim_ns;
		if (d > l->max_ns)
			l->max_ns = d;
		l->hist[bucket_of(d)]++;
	}
	p = proc_of(st, ev->file, ev->pid);
	if (!p)
		return -1;
	p->calls++;
	p->errors += c->rv != 0;
	p->busy_ns += d;
	if (c->fn == TRACE_FN_SCardTransmit) {
		struct apdu_command cmd;
		struct apdu_response resp;

		p->apdus++;
		st->apdus++;
		if (c->in.data && apdu_parse_command(c->in.data, c->in.len, &cmd) == 0)
			st->ins[(cmd.cla & 0x80) && cmd.cla != 0xFF][cmd.ins]++;
		if (c->out.data && apdu_parse_response(c->out.data, c->out.len, &resp) == 0)
			st->sw[resp.sw1 << 8 | resp.sw2]++;
	}
	return 0;
}

static void
print_text(const struct stats *st, const struct tap_input *in)
{
	char a[32], b[32], c[32], d[32];

	char e[32];

	printf("%-24s %9s %7s %12s %10s %10s %10s %10s\n", "FUNCTION", "CALLS", "ERRORS",
	       "TOTAL", "MEAN", "P50", "P99", "SHIM MEAN");
	for (int fn = 1; fn <= TRACE_FN_MAX; fn++) {
		const struct latency *l = &st->fn[fn];

		if (!l->count)
			continue;
		printf("%-24s %9" PRIu64 " %7" PRIu64 " %12s %10s %10s %10s %10s\n",
		       trace_fn_name(fn), l->count, l->errors,
		       fmt_duration(l->total_ns, a, sizeof(a)),
		       fmt_duration(l->total_ns / (int64_t)l->count, b, sizeof(b)),
		       fmt_duration(percentile(l, 0.50), c, sizeof(c)),
		       fmt_duration(percentile(l, 0.99), d, sizeof(d)),
		       fmt_duration(l->shim_ns / (int64_t)l->count, e, sizeof(e)));
	}
	printf("\n%-24s %9s %7s %12s %9s\n", "PROCESS", "CALLS", "ERRORS", "IN PC/SC", "APDUS");
	for (size_t i = 0; i < st->n_procs; i++) {
		const struct proc_stat *p = &st->procs[i];
		char name[64], process[40];

		snprintf(name, sizeof(name), "%s[%" PRId64 "]",
			 text_escape(tap_process_name(in, p->file, p->pid), process, sizeof(process)),
			 p->pid);
		printf("%-24s %9" PRIu64 " %7" PRIu64 " %12s %9" PRIu64 "\n", name, p->calls,
		       p->errors, fmt_duration(p->busy_ns, a, sizeof(a)), p->apdus);
	}
	printf("\n%-34s %9s\n", "APDUS BY INS", "COUNT");
	for (int cls = 0; cls < 2; cls++) {
		for (int ins = 0; ins < 256; ins++) {
			const char *name;

			if (!st->ins[cls][ins])
				continue;
			name = apdu_ins_name(cls ? 0x80 : 0x00, (uint8_t)ins);
			printf("%s %02X %-26s %9" PRIu64 "\n", cls ? "prop" : "ISO ", ins,
			       name ? name : "", st->ins[cls][ins]);
		}
	}
	printf("\n%-60s %9s\n", "APDUS BY SW", "COUNT");
	for (unsigned sw = 0; sw < 65536; sw++) {
		char meaning[96];

		if (!st->sw[sw])
			continue;
		apdu_sw_meaning((uint8_t)(sw >> 8), (uint8_t)sw, meaning, sizeof(meaning));
		printf("%04X %-55s %9" PRIu64 "\n", sw, meaning, st->sw[sw]);
	}
	printf("\n%" PRIu64 " calls, %" PRIu64 " APDUs\n", st->calls, st->apdus);
}

/* The text's last lines, or the JSON's "drops" and "dropped".  @retval 0 or a reader error */
static int
print_drops(struct tap_input *in, bool json, int *err_file)
{
	struct render r = { .out = stdout, .in = in };
	int64_t total;
	int rc;

	if (json)
		fputs(",\"drops\":[", stdout);
	rc = render_drops(&r, json ? DROPS_JSON_ARRAY : DROPS_TEXT, NULL, &total, err_file);
	if (json)
		printf("],\"dropped\":%" PRId64 "}\n", rc < 0 ? 0 : total);
	return rc;
}

static void
print_json(const struct stats *st, const struct tap_input *in)
{
	bool first = true;

	printf("{\"calls\":%" PRIu64 ",\"apdus\":%" PRIu64 ",\"functions\":[", st->calls, st->apdus);
	for (int fn = 1; fn <= TRACE_FN_MAX; fn++) {
		const struct latency *l = &st->fn[fn];

		if (!l->count)
			continue;
		printf("%s{\"fn\":\"%s\",\"count\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"total_ns\":%" PRId64 ",\"mean_ns\":%" PRId64 ",\"p50_ns\":%" PRId64
		       ",\"p99_ns\":%" PRId64 ",\"max_ns\":%" PRId64 ",\"shim_ns\":%" PRId64 "}",
		       first ? "" : ",", trace_fn_name(fn), l->count, l->errors, l->total_ns,
		       l->total_ns / (int64_t)l->count, percentile(l, 0.50),
		       percentile(l, 0.99), l->max_ns, l->shim_ns);
		first = false;
	}
	fputs("],\"processes\":[", stdout);
	for (size_t i = 0; i < st->n_procs; i++) {
		const struct proc_stat *p = &st->procs[i];

		printf("%s{\"file\":%d,\"pid\":%" PRId64 ",\"process\":", i ? "," : "", p->file, p->pid);
		json_string(stdout, tap_process_name(in, p->file, p->pid));
		printf(",\"calls\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"busy_ns\":%" PRId64
		       ",\"apdus\":%" PRIu64 "}", p->calls, p->errors, p->busy_ns, p->apdus);
	}
	fputs("],\"ins\":[", stdout);
	first = true;
	for (int cls = 0; cls < 2; cls++) {
		for (int ins = 0; ins < 256; ins++) {
			if (!st->ins[cls][ins])
				continue;
			printf("%s{\"class\":\"%s\",\"ins\":%d,\"name\":", first ? "" : ",",
			       cls ? "proprietary" : "interindustry", ins);
			json_string(stdout, apdu_ins_name(cls ? 0x80 : 0x00, (uint8_t)ins));
			printf(",\"count\":%" PRIu64 "}", st->ins[cls][ins]);
			first = false;
		}
	}
	fputs("],\"sw\":[", stdout);
	first = true;
	for (unsigned sw = 0; sw < 65536; sw++) {
		char meaning[96];

		if (!st->sw[sw])
			continue;
		apdu_sw_meaning((uint8_t)(sw >> 8), (uint8_t)sw, meaning, sizeof(meaning));
		printf("%s{\"sw\":\"%04X\",\"meaning\":", first ? "" : ",", sw);
		json_string(stdout, meaning);
		printf(",\"count\":%" PRIu64 "}", st->sw[sw]);
		first = false;
	}
	fputc(']', stdout);
}

static void
usage(FILE *f)
{
	fputs("usage: pcsctap stats [OPTIONS] [TRACE...]\n"
	      "\n"
	      "Per function: calls, errors, total, mean, p50 and p99 latency;\n"
	      "per process: calls, errors, time in PC/SC, APDUs; APDUs by INS and SW.\n"
	      "\n"
	      "  --pid PID        only this process\n"
	      "  --json           one JSON object\n"
	      "  -h, --help       this text\n"
	      "\n"
	      "TRACE defaults to $PCSCTAP_TRACE.\n", f);
}

int
cmd_stats(int argc, char **argv)
{
	struct tap_select sel = { .kinds = TAP_CALL };
	struct tap_input *in = NULL;
	struct tap_stream *stream = NULL;
	struct stats *st = NULL;
	struct tap_event ev;
	struct view_options vo;
	bool json;
	int status;
	int rc, err_file = 0;

	status = view_options_parse("stats", argc, argv, VIEW_PID | VIEW_JSON, usage, &vo);
	if (status >= 0)
		return status;
	sel.pid = vo.pid;
	json = vo.json;
	status = tap_input_open_nonempty(&in, "stats", vo.traces, vo.n_traces);
	if (status != PCSCTAP_EXIT_OK)
		goto out;
	st = calloc(1, sizeof(*st));
	if (st)
		st->sw = calloc(65536, sizeof(*st->sw));
	if (!st || !st->sw) {
		fprintf(stderr, "pcsctap stats: out of memory\n");
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}
	rc = tap_stream_open(&stream, in, &sel, NULL);
	if (rc < 0) {
		status = tap_input_fail(in, "stats", 0, rc);
		goto out;
	}
	while ((rc = tap_stream_next(stream, &ev, &err_file)) > 0) {
		if (account(st, &ev) < 0) {
			fprintf(stderr, "pcsctap stats: out of memory\n");
			status = PCSCTAP_EXIT_RUNTIME;
			goto out;
		}
	}
	if (rc < 0) {
		status = tap_input_fail(in, "stats", err_file, rc);
		goto out;
	}
	if (json)
		print_json(st, in);
	else
		print_text(st, in);
	rc = print_drops(in, json, &err_file);
	if (rc < 0)
		status = tap_input_fail(in, "stats", err_file, rc);
out:
	tap_stream_close(stream);
	tap_input_close(in);
	if (st) {
		free(st->sw);
		free(st->procs);
		free(st);
	}
	return finish_stdout("stats", status);
}
