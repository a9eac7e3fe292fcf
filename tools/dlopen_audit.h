/*
 * dlopen_audit.h — which dlopen() paths the audit module of `pcsctap run`
 * hands the shim for (dlopen_audit.c): those whose last component is a
 * name a program asks for libpcsclite by (the JDK tries exactly these).
 * The real library's own file (libpcsclite.so.1.0.0) is never one of them,
 * which is how the shim, told its path by `pcsctap run`, still loads it.
 */
#pragma once

#include <stdbool.h>
#include <string.h>

static inline bool
audit_redirects(const char *last_component)
{
	static const char *const names[] = { "libpcsclite.so", "libpcsclite.so.0", "libpcsclite.so.1" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(last_component, names[i]))
			return true;
	}
	return false;
}
