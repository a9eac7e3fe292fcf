#include "textout.h"
#include "commands.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One byte of trace text as it is shown: 1 to 4 characters into @p out. */
static size_t
escape_byte(unsigned char c, char out[4])
{
	static const char digits[] = "0123456789abcdef";

	switch (c) {
	case '\\': memcpy(out, "\\\\", 2); return 2;
	case '"': memcpy(out, "\\\"", 2); return 2;
	case '\n': memcpy(out, "\\n", 2); return 2;
	case '\r': memcpy(out, "\\r", 2); return 2;
	case '\t': memcpy(out, "\\t", 2); return 2;
	default:
		break;
	}
	/* Bytes above 0x7E too: 0x9B is CSI for terminals in 8-bit mode. */
	if (c >= 0x20 && c < 0x7F) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = digits[c >> 4];
	out[3] = digits[c & 15];
	return 4;
}

void
text_putn(FILE *f, const char *s, size_t n)
{
	char e[4];

	for (size_t i = 0; i < n; i++)
		fwrite(e, 1, escape_byte((unsigned char)s[i], e), f);
}

void
text_put(FILE *f, const char *s)
{
	if (s)
		text_putn(f, s, strlen(s));
}

const char *
text_escape(const char *s, char *buf, size_t len)
{
	size_t pos = 0;
	char e[4];

	if (!len)
		return buf;
	if (!s)
		s = "?";
	for (; *s; s++) {
		size_t n = escape_byte((unsigned char)*s, e);

		if (pos + n >= len)
			break;
		memcpy(buf + pos, e, n);
		pos += n;
	}
	buf[pos] = '\0';
	return buf;
}

void
json_string(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7F)
				fprintf(f, "\\u%04x", c);
			else
				putc(c, f);
		}
	}
	putc('"', f);
}

void
hex_out(FILE *f, const uint8_t *data, size_t len, size_t max)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++) {
		putc(digits[data[i] >> 4], f);
		putc(digits[data[i] & 15], f);
	}
	if (n < len)
		fputs("...", f);
}

void
json_hex(FILE *f, const uint8_t *data, size_t len)
{
	if (!data) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	hex_out(f, data, len, len);
	putc('"', f);
}

const char *
fmt_duration(int64_t ns, char *buf, size_t len)
{
	if (ns < 0)
		snprintf(buf, len, "?");
	else if (ns < 1000)
		snprintf(buf, len, "%" PRId64 "ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.3fms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.3fs", (double)ns / 1e9);
	return buf;
}

const char *
fmt_wall(int64_t wall_ns, char *buf, size_t len)
{
	time_t sec = (time_t)(wall_ns / 1000000000);
	long usec = (long)(wall_ns % 1000000000) / 1000;
	struct tm tm;
	char day[32];

	if (wall_ns < 0 || !localtime_r(&sec, &tm) ||
	    !strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm)) {
		snprintf(buf, len, "?");
		return buf;
	}
	snprintf(buf, len, "%s.%06ld", day, usec);
	return buf;
}

int
colour_wanted(const char *mode, FILE *f)
{
	const char *no = getenv("NO_COLOR");

	if (!mode || !strcmp(mode, "auto"))
		return isatty(fileno(f)) && !(no && *no);
	if (!strcmp(mode, "always"))
		return 1;
	if (!strcmp(mode, "never"))
		return 0;
	return -1;
}

int
parse_seconds(const char *text, int64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	/* Written so that NaN, which compares false with anything, fails. */
	if (errno || end == text || *end || !(v >= 0 && v <= 9e9))
		return -EINVAL;
	*ns = (int64_t)(v * 1e9 + 0.5);
	return 0;
}

int
parse_int64(const char *text, int64_t *v)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(text, &end, 0);
	if (errno || end == text || *end)
		return -EINVAL;
	*v = x;
	return 0;
}

int
parse_pid(const char *cmd, const char *text, int64_t *pid)
{
	if (parse_int64(text, pid) < 0 || *pid <= 0) {
		fprintf(stderr, "pcsctap %s: invalid pid '%s'\n", cmd, text);
		return -EINVAL;
	}
	return 0;
}

int
finish_stdout(const char *cmd, int status)
{
	int lost = 0;

	if (fflush(stdout) != 0 || ferror(stdout))
		lost = 1;
	if (fclose(stdout) != 0)
		lost = 1;
	if (lost && status == PCSCTAP_EXIT_OK) {
		fprintf(stderr, "pcsctap %s: error writing the output\n", cmd);
		status = PCSCTAP_EXIT_OUTPUT;
	}
	return status;
}

int
bad_option(const char *cmd, char **argv)
{
	/* getopt leaves optind past the offending word (or its missing value). */
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	fprintf(stderr, "pcsctap %s: unknown option or missing value: '%s' (see pcsctap %s --help)\n",
		cmd, arg, cmd);
	return PCSCTAP_EXIT_USAGE;
}

const char *
message_without_path(const char *msg, const char *path)
{
	size_t n = strlen(path);

	if (!strncmp(msg, path, n) && !strncmp(msg + n, ": ", 2))
		return msg + n + 2;
	return msg;
}
