/*
 * cmd_card.c — `pcsctap card`: a reference virtual card for vpcd-compatible
 * readers (stock vpcd and the pcsctap driver).
 *
 * It prints every message it gets with a timestamp (power, reset, ATR,
 * APDUs, session markers), answers APDUs from a response table or with
 * 9000, and can log the same in a tab-separated file for tests.
 */
#include "commands.h"
#include "hexutil.h"
#include "textout.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ATR "3B80800101"	/* T=0 and T=1 */
#define MAX_RESPONSES 256

struct response_rule {
	uint8_t prefix[64];
	size_t prefix_len;
	uint8_t answer[258];
	size_t answer_len;
};

struct card {
	uint8_t atr[33];
	size_t atr_len;
	bool quickack;
	bool quiet;
	bool once;
	FILE *log;
	/* --drop-on: close the connection instead of answering these APDUs. */
	uint8_t drop_prefix[64];
	size_t drop_len;
	struct response_rule rules[MAX_RESPONSES];
	size_t n_rules;
	int64_t t0_ns;
};

static volatile sig_atomic_t stopping;

/* Report one message: a human line on stdout, a TSV line in the log. */
static void
report(struct card *card, const char *kind, const uint8_t *data, size_t len,
       const uint8_t *answer, size_t answer_len, const char *text)
{
	int64_t now = trace_mono_ns();
	char *hex = malloc(2 * len + 1);
	char *answer_hex = malloc(2 * answer_len + 1);

	if (!hex || !answer_hex)
		goto out;
	hex_encode(data, len, hex);
	hex_encode(answer, answer_len, answer_hex);
	if (!card->quiet) {
		printf("[%12.6f] %-12s %s%s%s%s%s\n",
		       (double)(now - card->t0_ns) / 1e9, kind, hex,
		       answer_len ? " -> " : "", answer_hex,
		       text ? "  " : "", text ? text : "");
		fflush(stdout);
	}
	if (card->log) {
		fprintf(card->log, "%lld\t%s\t%s\t%s\t%s\n", (long long)now, kind,
			hex, answer_hex, text ? text : "");
		fflush(card->log);
	}
out:
	free(hex);
	free(answer_hex);
}

static size_t
answer_apdu(const struct card *card, const uint8_t *apdu, size_t len, uint8_t *out)
{
	for (size_t i = 0; i < card->n_rules; i++) {
		const struct response_rule *rule = &card->rules[i];

		if (rule->prefix_len <= len && !memcmp(rule->prefix, apdu, rule->prefix_len)) {
			memcpy(out, rule->answer, rule->answer_len);
			return rule->answer_len;
		}
	}
	out[0] = 0x90;
	out[1] = 0x00;
	return 2;
}

static void
quickack(const struct card *card, int fd)
{
	int one = 1;

	if (card->quickack)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void
handle_marker(struct card *card, int fd)
{
	uint8_t body[VPCD_FRAME_MAX];
	struct marker m;
	char text[512];
	ssize_t n;

	quickack(card, fd);
	n = vpcd_frame_read(fd, body, sizeof(body), 5000);
	if (n < 0) {
		report(card, "MARKER", NULL, 0, NULL, 0, "marker body missing");
		return;
	}
	if (marker_decode(&m, body, (size_t)n) == 0)
		marker_format(&m, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "malformed marker body");
	report(card, "MARKER", body, (size_t)n, NULL, 0, text);
}

/* Serve one reader connection until it closes. */
static int
serve(struct card *card, int fd)
{
	static uint8_t msg[VPCD_FRAME_MAX];
	uint8_t answer[258];

	report(card, "CONNECTED", NULL, 0, NULL, 0, NULL);
	while (!stopping) {
		ssize_t n;
		size_t answer_len;

		quickack(card, fd);
		n = vpcd_frame_read(fd, msg, sizeof(msg), -1);
		if (n < 0) {
			report(card, "DISCONNECTED", NULL, 0, NULL, 0,
			       n == -ECONNRESET ? NULL : strerror((int)-n));
			return 0;
		}
		if (n != 1 && card->drop_len && card->drop_len <= (size_t)n &&
		    !memcmp(card->drop_prefix, msg, card->drop_len)) {
			/* A card vanishing mid-APDU (fault tests); we connect again. */
			report(card, "DROP", msg, (size_t)n, NULL, 0, NULL);
			return 0;
		}
		if (n != 1) {
			answer_len = answer_apdu(card, msg, (size_t)n, answer);
			/*
			 * Log before answering: a client that has its answer
			 * then always finds the message in the log.
			 */
			report(card, "APDU", msg, (size_t)n, answer, answer_len, NULL);
			if (vpcd_frame_write(fd, answer, answer_len) < 0)
				return 0;
			continue;
		}
		switch (msg[0]) {
		case VPCD_CTRL_OFF:
			report(card, "POWER_OFF", msg, 1, NULL, 0, NULL);
			break;
		case VPCD_CTRL_ON:
			report(card, "POWER_ON", msg, 1, NULL, 0, NULL);
			break;
		case VPCD_CTRL_RESET:
			report(card, "RESET", msg, 1, NULL, 0, NULL);
			break;
		case VPCD_CTRL_ATR:
			report(card, "GET_ATR", msg, 1, card->atr, card->atr_len, NULL);
			if (vpcd_frame_write(fd, card->atr, card->atr_len) < 0)
				return 0;
			break;
		case VPCD_CTRL_MARKER:
			handle_marker(card, fd);
			break;
		default:
			report(card, "CONTROL", msg, 1, NULL, 0, "unknown control byte");
			break;
		}
	}
	return 0;
}

/*
 * HOST:PORT (or [IPV6]:PORT) resolved once, before anything is tried: a
 * typo is a usage error, not a retry loop.  The port must be 1-65535
 * (getaddrinfo would take 99999 modulo 65536, and 0 means "any").
 * @retval 0, or -EINVAL with one line on stderr
 */
static int
resolve(const char *option, const char *spec, bool listening, struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (listening ? AI_PASSIVE : 0),
	};
	const char *whole = spec, *colon = strrchr(spec, ':');
	char host[256], *end;
	size_t host_len;
	long port;
	int rc;

	if (!colon || colon == spec)
		goto bad;
	host_len = (size_t)(colon - spec);
	if (spec[0] == '[' && colon[-1] == ']') {
		spec++;
		host_len -= 2;
	}
	if (!host_len || host_len >= sizeof(host))
		goto bad;
	memcpy(host, spec, host_len);
	host[host_len] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	/* Digits only: strtol would also take a sign or leading blanks. */
	if (strspn(colon + 1, "0123456789") != strlen(colon + 1) || !colon[1] || *end ||
	    errno || port < 1 || port > 65535)
		goto bad;
	rc = getaddrinfo(host, colon + 1, &hints, res);
	if (rc != 0) {
		fprintf(stderr, "pcsctap card: %s '%s': cannot resolve '%s': %s\n", option,
			whole, host, gai_strerror(rc));
		return -EINVAL;
	}
	return 0;
bad:
	fprintf(stderr, "pcsctap card: %s '%s': not HOST:PORT with a port from 1 to 65535\n",
		option, whole);
	return -EINVAL;
}

static int
open_socket(const struct addrinfo *res, bool listening)
{
	const struct addrinfo *ai;
	int fd = -1;

	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (listening) {
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4) == 0)
				break;
		} else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			break;
		}
		close(fd);
		fd = -1;
	}
	return fd;
}

static int
load_responses(struct card *card, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	int lineno = 0;

	if (!f) {
		fprintf(stderr, "pcsctap card: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *cmd, *resp, *save = NULL;
		struct response_rule *rule;
		ssize_t n;

		lineno++;
		cmd = strtok_r(line, " \t\r\n", &save);
		if (!cmd || cmd[0] == '#')
			continue;
		resp = strtok_r(NULL, " \t\r\n", &save);
		if (card->n_rules == MAX_RESPONSES || !resp)
			goto bad;
		rule = &card->rules[card->n_rules];
		n = hex_decode(cmd, rule->prefix, sizeof(rule->prefix));
		if (n < 0)
			goto bad;
		rule->prefix_len = (size_t)n;
		n = hex_decode(resp, rule->answer, sizeof(rule->answer));
		if (n < 2)
			goto bad;
		rule->answer_len = (size_t)n;
		card->n_rules++;
	}
	fclose(f);
	return 0;
bad:
	fprintf(stderr, "pcsctap card: %s:%d: expected 'COMMAND-PREFIX-HEX RESPONSE-HEX'\n",
		path, lineno);
	fclose(f);
	return -1;
}

static void
on_signal(int sig)
{
	stopping = 1;
}

static void
card_usage(FILE *out)
{
	fprintf(out,
		"usage: pcsctap card [--connect HOST:PORT | --listen ADDR:PORT] [OPTIONS]\n"
		"\n"
		"A virtual card for vpcd-compatible readers (vsmartcard vpcd, the pcsctap\n"
		"driver).  Prints every message it gets, session markers decoded.\n"
		"\n"
		"  -c, --connect HOST:PORT  connect to the reader (default 127.0.0.1:35963;\n"
		"                           [IPV6]:PORT too, a port from 1 to 65535)\n"
		"  -l, --listen ADDR:PORT   wait for a reader in reversed mode\n"
		"  -a, --atr HEX            the ATR (default %s)\n"
		"  -r, --responses FILE     answers: lines 'COMMAND-PREFIX-HEX RESPONSE-HEX'\n"
		"                           (first match wins; default answer 9000)\n"
		"      --log FILE           also log each message as a tab-separated line\n"
		"      --quickack           set TCP_QUICKACK before each read\n"
		"      --once               exit when the reader connection ends\n"
		"      --drop-on HEX        close the connection instead of answering an APDU\n"
		"                           starting with HEX (then connect again as usual)\n"
		"  -q, --quiet              print nothing on stdout\n",
		DEFAULT_ATR);
}

int
cmd_card(int argc, char **argv)
{
	static struct card card;
	static const struct option options[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "atr", required_argument, NULL, 'a' },
		{ "responses", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'L' },
		{ "quickack", no_argument, NULL, 'Q' },
		{ "once", no_argument, NULL, 'O' },
		{ "drop-on", required_argument, NULL, 'D' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *connect_to = "127.0.0.1:35963", *listen_on = NULL;
	const char *atr = DEFAULT_ATR;
	struct sigaction sa = { .sa_handler = on_signal };
	struct addrinfo *addr;
	ssize_t n;
	int opt;

	card.t0_ns = trace_mono_ns();
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:l:a:r:qh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			connect_to = optarg;
			break;
		case 'l':
			listen_on = optarg;
			break;
		case 'a':
			atr = optarg;
			break;
		case 'r':
			if (load_responses(&card, optarg) < 0)
				return PCSCTAP_EXIT_INPUT;
			break;
		case 'L':
			card.log = fopen(optarg, "ae");
			if (!card.log) {
				fprintf(stderr, "pcsctap card: %s: %s\n", optarg, strerror(errno));
				return PCSCTAP_EXIT_OUTPUT;
			}
			break;
		case 'Q':
			card.quickack = true;
			break;
		case 'O':
			card.once = true;
			break;
		case 'D':
			n = hex_decode(optarg, card.drop_prefix, sizeof(card.drop_prefix));
			if (n < 1) {
				fprintf(stderr, "pcsctap card: '%s' is not an APDU prefix in hex\n", optarg);
				return PCSCTAP_EXIT_USAGE;
			}
			card.drop_len = (size_t)n;
			break;
		case 'q':
			card.quiet = true;
			break;
		case 'h':
			card_usage(stdout);
			return PCSCTAP_EXIT_OK;
		default:
			return bad_option("card", argv);
		}
	}
	if (optind != argc) {
		card_usage(stderr);
		return PCSCTAP_EXIT_USAGE;
	}
	n = hex_decode(atr, card.atr, sizeof(card.atr));
	if (n < 2) {
		fprintf(stderr, "pcsctap card: '%s' is not an ATR (2 to 33 bytes of hex)\n", atr);
		return PCSCTAP_EXIT_USAGE;
	}
	card.atr_len = (size_t)n;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (resolve(listen_on ? "--listen" : "--connect", listen_on ? listen_on : connect_to,
		    listen_on != NULL, &addr) < 0)
		return PCSCTAP_EXIT_USAGE;
	if (listen_on) {
		int lfd = open_socket(addr, true);

		freeaddrinfo(addr);
		if (lfd < 0) {
			fprintf(stderr, "pcsctap card: cannot listen on %s: %s\n", listen_on,
				strerror(errno));
			return PCSCTAP_EXIT_RUNTIME;
		}
		while (!stopping) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd < 0)
				continue;
			serve(&card, fd);
			close(fd);
			if (card.once)
				break;
		}
		close(lfd);
		return PCSCTAP_EXIT_OK;
	}
	while (!stopping) {
		int fd = open_socket(addr, false);

		if (fd < 0) {
			/* The reader may not be listening yet (pcscd still starting). */
			struct timespec pause = { 0, 100 * 1000 * 1000 };

			nanosleep(&pause, NULL);
			continue;
		}
		serve(&card, fd);
		close(fd);
		if (card.once)
			break;
	}
	freeaddrinfo(addr);
	return PCSCTAP_EXIT_OK;
}
