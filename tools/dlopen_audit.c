/*
 * dlopen_audit.c — libpcsctap-audit.so, an rtld-audit(7) module that
 * `pcsctap run` puts in LD_AUDIT so that a program which dlopen()s
 * libpcsclite by an absolute path gets the shim instead.
 *
 * Why: LD_PRELOAD and the library-replacement directory on
 * LD_LIBRARY_PATH (docs/shim.md) reach every program that finds
 * libpcsclite by name, but not one that names a path:
 * dlopen("/usr/lib/x86_64-linux-gnu/libpcsclite.so.1") then dlsym() on that
 * handle finds the real library's functions.  Upstream JDKs (Temurin 25:
 * libj2pcsc.so has no DT_NEEDED on libpcsclite) do exactly that.  The
 * JVM's own way in, -Dsun.security.smartcardio.library in
 * JAVA_TOOL_OPTIONS, makes every Java program print "Picked up
 * JAVA_TOOL_OPTIONS: ..." on stderr; an audit module prints nothing.
 *
 * How: the dynamic loader reports every object it opens (la_objopen)
 * and asks for every name it is about to look up (la_objsearch).  Once
 * the preloaded shim is open, a lookup of a path that ends in one of the
 * names of audit_redirects() is answered with the shim's own path, so the
 * dlopen() returns the shim, already loaded.  The shim itself must load
 * the real library: `pcsctap run` gives it the real file's resolved path
 * (PCSCTAP_REAL_LIBRARY=.../libpcsclite.so.1.0.0), which is not
 * redirected.  The requester is not a safe test (with ASan every dlopen
 * comes from libasan's interceptor), so it only adds a guard for the
 * shim's direct calls.  Nothing changes where the shim is not loaded.
 *
 * It runs in its own link-map namespace before the program starts, so it
 * uses nothing but a few string functions and keeps no state beyond two
 * pointers.
 */
#include "dlopen_audit.h"

#include <link.h>
#include <stddef.h>
#include <string.h>

#define SHIM_NAME "libpcsctap.so"

#define AUDIT_EXPORT __attribute__((visibility("default")))

static uintptr_t *shim_cookie;	/* the shim's object, once it is open */
static char *shim_path;		/* its l_name, valid while it is loaded */

static const char *
last_component(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

AUDIT_EXPORT unsigned int
la_version(unsigned int version)
{
	/* Version 1 is all we use; the loader refuses 0. */
	return version < LAV_CURRENT ? version : LAV_CURRENT;
}

AUDIT_EXPORT unsigned int
la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
	if (!shim_cookie && lmid == LM_ID_BASE && map->l_name &&
	    !strcmp(last_component(map->l_name), SHIM_NAME)) {
		shim_cookie = cookie;
		shim_path = map->l_name;
	}
	/* No symbol binding to audit: binding stays as fast as without us. */
	return 0;
}

AUDIT_EXPORT char *
la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
	if (flag == LA_SER_ORIG && shim_cookie && cookie != shim_cookie &&
	    strchr(name, '/') && audit_redirects(last_component(name)))
		return shim_path;
	return (char *)name;
}
