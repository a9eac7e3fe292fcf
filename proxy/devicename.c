/*
 * devicename.c — the DEVICENAME of reader.conf: vpcd's "HOST:PORT" forms
 * plus pcsctap's options, ":KEY=VALUE" after the port.
 *
 * reader.conf only accepts [A-Za-z0-9=\/-._@:] in an unquoted value, so
 * options are separated by ':' as well.  A ':' starts a new option only
 * when a known key and '=' follow, so that values (trace paths, IPv6
 * listen addresses) may contain ':' themselves.
 */
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[] = { "markers", "listen", "trace", "timeout", "name", "presence" };

void
devopts_default(struct devopts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = DRIVER_DEFAULT_PORT;
	snprintf(o->listen, sizeof(o->listen), "%s", DRIVER_DEFAULT_LISTEN);
	o->timeout_ms = DRIVER_DEFAULT_TIMEOUT_MS;
}

/* Does an option "KEY=" start at @p p? */
static bool
option_starts(const char *p)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t n = strlen(keys[i]);

		if (!strncmp(p, keys[i], n) && p[n] == '=')
			return true;
	}
	return false;
}

/* The end of the option value that starts at @p p. */
static const char *
value_end(const char *p)
{
	for (; *p; p++) {
		if (*p == ':' && option_starts(p + 1))
			return p;
	}
	return p;
}

static int
copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

static int
parse_option(struct devopts *o, const char *opt, size_t len, char *err, size_t errlen)
{
	const char *eq = memchr(opt, '=', len);
	size_t klen = eq ? (size_t)(eq - opt) : len;
	const char *v = eq ? eq + 1 : "";
	size_t vlen = eq ? len - klen - 1 : 0;

	if (klen == 7 && !strncmp(opt, "markers", 7)) {
		if ((vlen == 2 && !strncmp(v, "on", 2)) || (vlen == 1 && v[0] == '1') ||
		    (vlen == 3 && !strncmp(v, "yes", 3)))
			o->markers = true;
		else if ((vlen == 3 && !strncmp(v, "off", 3)) || (vlen == 1 && v[0] == '0') ||
			 (vlen == 2 && !strncmp(v, "no", 2)))
			o->markers = false;
		else
			goto bad_value;
		return 0;
	}
	if (klen == 8 && !strncmp(opt, "presence", 8)) {
		if (vlen == 5 && !strncmp(v, "event", 5))
			o->presence_poll = false;
		else if (vlen == 4 && !strncmp(v, "poll", 4))
			o->presence_poll = true;
		else
			goto bad_value;
		return 0;
	}
	if (klen == 6 && !strncmp(opt, "listen", 6)) {
		if (!vlen || copy_value(o->listen, sizeof(o->listen), v, vlen) < 0)
			goto bad_value;
		return 0;
	}
	if (klen == 5 && !strncmp(opt, "trace", 5)) {
		if (!vlen || copy_value(o->trace, sizeof(o->trace), v, vlen) < 0)
			goto bad_value;
		return 0;
	}
	if (klen == 4 && !strncmp(opt, "name", 4)) {
		if (!vlen || copy_value(o->name, sizeof(o->name), v, vlen) < 0)
			goto bad_value;
		return 0;
	}
	if (klen == 7 && !strncmp(opt, "timeout", 7)) {
		char num[16];
		char *end;
		long ms;

		if (copy_value(num, sizeof(num), v, vlen) < 0)
			goto bad_value;
		errno = 0;
		ms = strtol(num, &end, 10);
		/* At least 10 ms, at most 10 minutes: pcscd must never wait for ever. */
		if (errno || end == num || *end || ms < 10 || ms > 600000)
			goto bad_value;
		o->timeout_ms = (int)ms;
		return 0;
	}
	snprintf(err, errlen, "unknown option '%.*s' (known: markers, listen, trace, timeout, name, presence)",
		 (int)klen, opt);
	return -EINVAL;
bad_value:
	snprintf(err, errlen, "bad value for option '%.*s'", (int)len, opt);
	return -EINVAL;
}

int
devopts_parse(struct devopts *o, const char *devicename, char *err, size_t errlen)
{
	const char *colon, *p, *port_end;
	char num[16];
	char *end;
	unsigned long port;
	int rc;

	devopts_default(o);
	if (errlen)
		err[0] = '\0';
	if (!devicename)
		return 0;
	colon = strchr(devicename, ':');
	if (!colon) {
		/* vpcd: no ':' means the default port (and listening). */
		return 0;
	}
	/* vpcd: "/dev/null" listens, any other host is a reversed card. */
	if ((size_t)(colon - devicename) != strlen("/dev/null") ||
	    strncmp(devicename, "/dev/null", (size_t)(colon - devicename))) {
		if (copy_value(o->host, sizeof(o->host), devicename,
			       (size_t)(colon - devicename)) < 0 || colon == devicename) {
			snprintf(err, errlen, "bad host in DEVICENAME");
			return -EINVAL;
		}
	}
	p = colon + 1;
	port_end = strchr(p, ':');
	if (!port_end)
		port_end = p + strlen(p);
	if (copy_value(num, sizeof(num), p, (size_t)(port_end - p)) < 0) {
		snprintf(err, errlen, "bad port in DEVICENAME");
		return -EINVAL;
	}
	errno = 0;
	port = strtoul(num, &end, 0);
	/* Slot 1 uses port + 1, so the last port cannot be slot 0's. */
	if (errno || end == num || *end || port == 0 || port >= 0xFFFF) {
		snprintf(err, errlen, "bad port '%s' in DEVICENAME (1 to 65534)", num);
		return -EINVAL;
	}
	o->port = (unsigned)port;
	p = port_end;
	while (*p == ':') {
		const char *e;

		p++;
		e = value_end(p);
		rc = parse_option(o, p, (size_t)(e - p), err, errlen);
		if (rc < 0)
			return rc;
		p = e;
	}
	return 0;
}
