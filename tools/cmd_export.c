/*
 * cmd_export.c — `pcsctap export`: the trace as a capture file for
 * Wireshark.  Records are link type 252 (exported PDU): APDUs for the
 * iso7816 dissector with their direction, ATRs for iso7816.atr, and every
 * other call, marker and wire event as a syslog line.  pcapng (written by
 * tools/pcapng.c) adds one interface per reader and per-packet comments
 * with pid, handle and return code; classic pcap goes through libpcap.
 */
#include "config.h"
#include "commands.h"
#include "outfile.h"
#include "pcapng.h"
#include "pcscnames.h"
#include "render.h"
#include "events.h"
#include "textout.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IFACES 256
#define GLOBAL_IFACE "PC/SC"
#define WIRE_SUFFIX " [driver]"
/* The longest record Wireshark reads (WTAP_MAX_PACKET_SIZE_STANDARD). */
#define EXPORT_SNAPLEN 262144

struct sink {
	bool ng;
	FILE *f;
	struct pcapng_writer *w;
	pcap_t *dead;
	pcap_dumper_t *dump;
	char *names[MAX_IFACES];
	uint32_t ids[MAX_IFACES];
	size_t n_names;
	uint8_t *buf;		/* one exported-PDU record */
	size_t cap;
	char *text;		/* a syslog line being built */
	size_t text_size;
	FILE *text_f;
	uint64_t packets;
	char cut_comment[600];	/* a comment with the note of a cut record */
};

static int
sink_iface(struct sink *k, const char *name, uint32_t *id)
{
	int rc;

	*id = 0;
	if (!k->ng)
		return 0;
	for (size_t i = 0; i < k->n_names; i++) {
		if (!strcmp(k->names[i], name)) {
			*id = k->ids[i];
			return 0;
		}
	}
	/* More readers than that: the rest share the last interface. */
	if (k->n_names == MAX_IFACES) {
		*id = k->ids[MAX_IFACES - 1];
		return 0;
	}
	k->names[k->n_names] = strdup(name);
	if (!k->names[k->n_names])
		return -ENOMEM;
	rc = pcapng_add_interface(k->w, LINKTYPE_WIRESHARK_UPPER_PDU, name, &k->ids[k->n_names]);
	if (rc < 0) {
		free(k->names[k->n_names]);
		return rc;
	}
	*id = k->ids[k->n_names++];
	return 0;
}

static int
sink_record(struct sink *k, const char *iface_name, int64_t wall_ns,
	    const char *dissector, int direction, const uint8_t *payload,
	    size_t len, const char *comment)
{
	size_t header = exported_pdu_build(NULL, 0, dissector, direction, payload, 0);
	size_t kept = len, need;
	uint32_t iface, flags = 0;
	int rc;

	rc = sink_iface(k, iface_name, &iface);
	if (rc < 0)
		return rc;
	/*
	 * Wireshark refuses a whole file when one record is longer than
	 * EXPORT_SNAPLEN (a 1 MB reader name in a syslog line, a 20 MB
	 * blob): such a record is cut, as a capture with a snap length
	 * would cut it, and keeps its full length as the original length
	 * (Wireshark shows "Packet size limited during capture"); its
	 * comment says how much was kept.
	 */
	if (header + len > EXPORT_SNAPLEN) {
		kept = EXPORT_SNAPLEN - header;
		snprintf(k->cut_comment, sizeof(k->cut_comment), "%s%scut: %zu of %zu bytes kept",
			 comment ? comment : "", comment ? " " : "", kept, len);
		comment = k->cut_comment;
	}
	need = header + kept;
	if (need > k->cap) {
		uint8_t *nb = realloc(k->buf, need);

		if (!nb)
			return -ENOMEM;
		k->buf = nb;
		k->cap = need;
	}
	exported_pdu_build(k->buf, k->cap, dissector, direction, payload, kept);
	if (direction == EXP_PDU_DIR_SENT)
		flags = PCAPNG_EPB_OUTBOUND;
	else if (direction == EXP_PDU_DIR_RECEIVED)
		flags = PCAPNG_EPB_INBOUND;
	k->packets++;
	if (k->ng)
		return pcapng_write_packet(k->w, iface, wall_ns, k->buf, need, header + len,
					   flags, comment);
	{
		struct pcap_pkthdr h = {
			.ts.tv_sec = (time_t)(wall_ns / 1000000000),
			/* nanoseconds: the dumper was opened with nano precision */
			.ts.tv_usec = (suseconds_t)(wall_ns % 1000000000),
			.caplen = (bpf_u_int32)need,
			.len = (bpf_u_int32)(header + len > UINT32_MAX ? UINT32_MAX : header + len),
		};

		pcap_dump((u_char *)k->dump, &h, k->buf);
	}
	return ferror(k->f) ? -EIO : 0;
}

/* Start a syslog line in k->text_f; sink_syslog_end() sends it. */
static void
syslog_begin(struct sink *k, int64_t pid)
{
	rewind(k->text_f);
	/* <14>: facility user, severity info. */
	fprintf(k->text_f, "<14>pcsctap[%" PRId64 "]: ", pid);
}

static int
syslog_end(struct sink *k, const char *iface, int64_t wall_ns, const char *comment)
{
	long len;

	fflush(k->text_f);
	len = ftell(k->text_f);
	if (len < 0)
		return -EIO;
	/* The rendered line ends with a newline, which syslog does not want. */
	while (len > 0 && k->text[len - 1] == '\n')
		len--;
	return sink_record(k, iface, wall_ns, "syslog", EXP_PDU_DIR_NONE,
			   (const uint8_t *)k->text, (size_t)len, comment);
}

struct exporter {
	struct sink sink;
	struct tap_input *in;
	struct render r;
	char comment[512];
	char iface[512];
	uint64_t apdus;
};

static const char *
comment_for(struct exporter *x, const struct tap_event *ev, const char *what,
	    bool card, uint64_t handle, bool has_rv, int64_t rv)
{
	const char *name = pcsc_rv_name(rv);
	int n;

	n = snprintf(x->comment, sizeof(x->comment), "%s pid=%" PRId64 " process=%s",
		     what, ev->pid, tap_process_name(x->in, ev->file, ev->pid));
	if (card && n > 0 && (size_t)n < sizeof(x->comment))
		n += snprintf(x->comment + n, sizeof(x->comment) - (size_t)n,
			      " handle=0x%" PRIx64, handle);
	if (has_rv && n > 0 && (size_t)n < sizeof(x->comment))
		snprintf(x->comment + n, sizeof(x->comment) - (size_t)n,
			 " rv=%s (0x%08" PRIX32 ")", name ? name : "?", pcsc_rv_u32(rv));
	return x->comment;
}

static int
export_call(struct exporter *x, const struct tap_event *ev)
{
	const struct trace_call *c = &ev->call->call;
	const char *iface = ev->reader ? ev->reader : GLOBAL_IFACE;
	bool card = c->present & TRACE_HAS_CARD;
	int64_t ret_wall = ev->wall_ns + (c->t_return_ns - c->t_enter_ns);
	const char *fn = trace_fn_name(c->fn);
	int rc;

	if (c->fn == TRACE_FN_SCardTransmit && c->in.data && c->in.len >= 4) {
		x->apdus++;
		comment_for(x, ev, "SCardTransmit", card, c->card, true, c->rv);
		rc = sink_record(&x->sink, iface, ev->wall_ns, "iso7816", EXP_PDU_DIR_SENT,
				 c->in.data, c->in.len, x->comment);
		if (rc < 0 || !c->out.data || c->out.len < 2)
			return rc;
		return sink_record(&x->sink, iface, ret_wall, "iso7816", EXP_PDU_DIR_RECEIVED,
				   c->out.data, c->out.len, x->comment);
	}
	syslog_begin(&x->sink, ev->pid);
	render_call(&x->r, ev);
	rc = syslog_end(&x->sink, iface, ev->wall_ns,
			comment_for(x, ev, fn ? fn : "call", card, c->card, true, c->rv));
	/* The ATR that SCardStatus returned, for Wireshark's ATR dissector. */
	if (rc == 0 && c->fn == TRACE_FN_SCardStatus && c->rv == 0 && c->out.data && c->out.len >= 2)
		rc = sink_record(&x->sink, iface, ret_wall, "iso7816.atr", EXP_PDU_DIR_RECEIVED,
				 c->out.data, c->out.len, x->comment);
	return rc;
}

static int
export_marker(struct exporter *x, const struct tap_event *ev)
{
	const struct trace_marker *m = &ev->marker->marker;

	syslog_begin(&x->sink, ev->pid);
	render_marker(&x->r, ev);
	return syslog_end(&x->sink, ev->reader ? ev->reader : GLOBAL_IFACE, ev->wall_ns,
			  comment_for(x, ev, "marker", true, m->card, true, m->rv));
}

static int
export_wire(struct exporter *x, const struct tap_event *ev)
{
	const struct trace_wire *w = &ev->wire->wire;
	int64_t end_wall = ev->wall_ns + (w->t_end_ns > w->t_ns ? w->t_end_ns - w->t_ns : 0);
	int rc;

	snprintf(x->iface, sizeof(x->iface), "%s" WIRE_SUFFIX, w->reader ? w->reader : "?");
	comment_for(x, ev, "wire", false, 0, false, 0);
	if (w->kind == TRACE_WIRE_APDU && w->sent.data && w->sent.len >= 4) {
		x->apdus++;
		rc = sink_record(&x->sink, x->iface, ev->wall_ns, "iso7816", EXP_PDU_DIR_SENT,
				 w->sent.data, w->sent.len, x->comment);
		if (rc < 0 || !w->received.data || w->received.len < 2)
			return rc;
		return sink_record(&x->sink, x->iface, end_wall, "iso7816", EXP_PDU_DIR_RECEIVED,
				   w->received.data, w->received.len, x->comment);
	}
	syslog_begin(&x->sink, ev->pid);
	render_wire(&x->r, ev);
	rc = syslog_end(&x->sink, x->iface, ev->wall_ns, x->comment);
	if (rc == 0 && (w->kind == TRACE_WIRE_POWER_ON || w->kind == TRACE_WIRE_RESET ||
			w->kind == TRACE_WIRE_GET_ATR) && w->received.data && w->received.len >= 2)
		rc = sink_record(&x->sink, x->iface, end_wall, "iso7816.atr", EXP_PDU_DIR_RECEIVED,
				 w->received.data, w->received.len, x->comment);
	return rc;
}

/* The drops rows: a syslog record each, so the capture says what it lacks. */
static int
export_drops(struct exporter *x, int *err_file)
{
	int rc = 0;

	for (int file = 0; file < tap_input_count(x->in) && rc == 0; file++) {
		struct trace_iter *it = NULL;
		struct trace_drop d;

		*err_file = file;
		rc = trace_iter_drops(tap_input_reader(x->in, file), &it);
		if (rc < 0)
			return rc;
		while ((rc = trace_iter_drop_next(it, &d)) > 0) {
			snprintf(x->comment, sizeof(x->comment), "drops pid=%" PRId64 " count=%" PRId64,
				 d.pid, d.count);
			syslog_begin(&x->sink, d.pid);
			render_drop(&x->r, file, &d);
			rc = syslog_end(&x->sink, GLOBAL_IFACE, d.wall_ns, x->comment);
			if (rc < 0) {
				/* an output error, not the reader's */
				*err_file = -1;
				break;
			}
		}
		trace_iter_end(it);
	}
	return rc < 0 ? rc : 0;
}

static void
usage(FILE *f)
{
	fputs("usage: pcsctap export -o FILE [OPTIONS] [TRACE...]\n"
	      "\n"
	      "Write the traces as a capture file that Wireshark decodes: APDUs for\n"
	      "its iso7816 dissector, ATRs, and the other calls, session markers and\n"
	      "driver events as syslog records.  pcapng has one interface per reader\n"
	      "and comments with pid, handle and return code.\n"
	      "\n"
	      "  -o, --output FILE     the capture file ('-': standard output)\n"
	      "  --format FORMAT       pcapng (default) or pcap (libpcap, no interface\n"
	      "                        names nor comments)\n"
	      "  --pid PID             only this process\n"
	      "  --reader NAME         only this reader\n"
	      "  --session ID          only this session\n"
	      "  -h, --help            this text\n"
	      "\n"
	      "TRACE defaults to $PCSCTAP_TRACE.\n", f);
}

static int
sink_open(struct sink *k, FILE *f, bool ng)
{
	int rc = 0;

	k->ng = ng;
	k->f = f;
	k->text_f = open_memstream(&k->text, &k->text_size);
	if (!k->text_f) {
		rc = -ENOMEM;
		goto out;
	}
	if (ng) {
		rc = pcapng_writer_open(&k->w, k->f, "pcsctap " PCSCTAP_VERSION);
		goto out;
	}
	k->dead = pcap_open_dead_with_tstamp_precision(LINKTYPE_WIRESHARK_UPPER_PDU, EXPORT_SNAPLEN,
						       PCAP_TSTAMP_PRECISION_NANO);
	if (!k->dead) {
		rc = -ENOMEM;
		goto out;
	}
	k->dump = pcap_dump_fopen(k->dead, k->f);
	if (!k->dump)
		rc = -EIO;
out:
	return rc;
}

/*
 * Flush everything into the output (whose FILE the outfile closes, unless
 * libpcap did: then out->f is cleared).  @retval 0, or -EIO when anything was lost
 */
static int
sink_close(struct sink *k, struct outfile *out)
{
	int rc = 0;

	if (k->w && pcapng_writer_close(k->w) < 0)
		rc = -EIO;
	if (k->dump) {
		if (pcap_dump_flush(k->dump) < 0 || ferror(k->f))
			rc = -EIO;
		/* pcap_dump_close() closes the FILE. */
		pcap_dump_close(k->dump);
		out->f = NULL;
	}
	if (k->dead)
		pcap_close(k->dead);
	if (k->text_f)
		fclose(k->text_f);
	free(k->text);
	for (size_t i = 0; i < k->n_names; i++)
		free(k->names[i]);
	free(k->buf);
	return rc;
}

int
cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'F' },
		{ "pid", required_argument, NULL, 'p' },
		{ "reader", required_argument, NULL, 'r' },
		{ "session", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct exporter x = { 0 };
	struct outfile file = { 0 };
	struct tap_select sel = { .kinds = TAP_ALL };
	struct tap_stream *stream = NULL;
	struct tap_event ev;
	const char *output = NULL;
	bool ng = true, opened = false;
	int status = PCSCTAP_EXIT_OK;
	int opt, rc, err_file = 0;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			output = optarg;
			break;
		case 'F':
			if (!strcmp(optarg, "pcapng")) {
				ng = true;
			} else if (!strcmp(optarg, "pcap")) {
				ng = false;
			} else {
				fprintf(stderr, "pcsctap export: --format takes pcapng or pcap\n");
				return PCSCTAP_EXIT_USAGE;
			}
			break;
		case 'p':
			if (parse_pid("export", optarg, &sel.pid) < 0)
				return PCSCTAP_EXIT_USAGE;
			break;
		case 'r':
			sel.reader = optarg;
			break;
		case 's':
			if (parse_int64(optarg, &sel.session) < 0 || sel.session <= 0) {
				fprintf(stderr, "pcsctap export: invalid session '%s'\n", optarg);
				return PCSCTAP_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return PCSCTAP_EXIT_OK;
		default:
			return bad_option("export", argv);
		}
	}
	if (!output) {
		fprintf(stderr, "pcsctap export: no output file (-o FILE)\n");
		return PCSCTAP_EXIT_USAGE;
	}
	status = tap_input_open_nonempty(&x.in, "export", argv + optind, argc - optind);
	if (status != PCSCTAP_EXIT_OK)
		goto out;
	rc = tap_stream_open(&stream, x.in, &sel, NULL);
	if (rc == -ENOENT && sel.session) {
		fprintf(stderr, "pcsctap export: no session %" PRId64 " in the trace\n", sel.session);
		status = PCSCTAP_EXIT_INPUT;
		goto out;
	}
	if (rc < 0) {
		status = tap_input_fail(x.in, "export", 0, rc);
		goto out;
	}
	/* Opened only once the input is known good, so errors leave no file. */
	status = outfile_open(&file, "export", output, x.in);
	if (status != PCSCTAP_EXIT_OK)
		goto out;
	rc = sink_open(&x.sink, file.f, ng);
	opened = true;
	if (rc < 0) {
		fprintf(stderr, "pcsctap export: %s: %s\n", output, strerror(-rc));
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}
	x.r.out = x.sink.text_f;
	x.r.in = x.in;
	x.r.header = false;
	x.r.colour = false;
	while ((rc = tap_stream_next(stream, &ev, &err_file)) > 0) {
		if (ev.kind == TAP_CALL)
			rc = export_call(&x, &ev);
		else if (ev.kind == TAP_MARKER)
			rc = export_marker(&x, &ev);
		else
			rc = export_wire(&x, &ev);
		if (rc < 0) {
			fprintf(stderr, "pcsctap export: %s: %s\n", output, strerror(-rc));
			status = rc == -ENOMEM ? PCSCTAP_EXIT_RUNTIME : PCSCTAP_EXIT_OUTPUT;
			goto out;
		}
	}
	if (rc == 0)
		rc = export_drops(&x, &err_file);
	if (rc < 0 && err_file < 0) {
		fprintf(stderr, "pcsctap export: %s: %s\n", output, strerror(-rc));
		status = rc == -ENOMEM ? PCSCTAP_EXIT_RUNTIME : PCSCTAP_EXIT_OUTPUT;
		goto out;
	}
	if (rc < 0) {
		status = tap_input_fail(x.in, "export", err_file, rc);
		goto out;
	}
out:
	tap_stream_close(stream);
	if (opened && sink_close(&x.sink, &file) < 0 && status == PCSCTAP_EXIT_OK) {
		fprintf(stderr, "pcsctap export: %s: error writing the capture\n", output);
		status = PCSCTAP_EXIT_OUTPUT;
	}
	rc = outfile_close(&file, status == PCSCTAP_EXIT_OK);
	if (rc < 0 && status == PCSCTAP_EXIT_OK) {
		fprintf(stderr, "pcsctap export: %s: %s\n", output, strerror(-rc));
		status = PCSCTAP_EXIT_OUTPUT;
	}
	if (status == PCSCTAP_EXIT_OK && strcmp(output, "-"))
		fprintf(stderr, "pcsctap export: %s: %" PRIu64 " packets, %" PRIu64 " APDUs\n",
			output, x.sink.packets, x.apdus);
	tap_input_close(x.in);
	return status;
}
