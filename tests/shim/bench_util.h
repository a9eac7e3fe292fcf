/*
 * bench_util.h — what the shim's benchmark programs (bench-transmit,
 * bench-cpu) share: the SCardTransmit type, clocks, sorting, and binding
 * libpcsctap.so's (or another library's) SCardTransmit by dlopen.
 */
#pragma once

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <winscard.h>

typedef LONG (*transmit_fn)(SCARDHANDLE, const SCARD_IO_REQUEST *, LPCBYTE, DWORD,
			    SCARD_IO_REQUEST *, LPBYTE, LPDWORD);

static inline int64_t
bench_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * The SCardTransmit of the library at @p path, dlopened on its own, after
 * one SCardEstablishContext/SCardReleaseContext through it (libpcsctap.so
 * starts its trace there; libpcscspy binds the real library there).
 * NULL (a message on stderr, prefixed @p who) when it cannot be loaded.
 */
static inline transmit_fn
bench_load_transmit(const char *who, const char *path)
{
	LONG (*establish)(DWORD, LPCVOID, LPCVOID, LPSCARDCONTEXT);
	LONG (*release)(SCARDCONTEXT);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	SCARDCONTEXT ctx;

	if (!h) {
		fprintf(stderr, "%s: %s\n", who, dlerror());
		return NULL;
	}
	establish = (LONG (*)(DWORD, LPCVOID, LPCVOID, LPSCARDCONTEXT))dlsym(h, "SCardEstablishContext");
	release = (LONG (*)(SCARDCONTEXT))dlsym(h, "SCardReleaseContext");
	if (establish(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) == SCARD_S_SUCCESS)
		release(ctx);
	return (transmit_fn)dlsym(h, "SCardTransmit");
}
