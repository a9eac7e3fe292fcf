/*
 * shim.h — internal interfaces of libpcsctap.so.
 *
 * bind.c     finds the real library once (pthread_once), reads the
 *            configuration, opens the trace and installs the fork handlers.
 * config.c   the PCSCTAP_* environment, parsed once.
 * wrappers.c the exported functions, generated from scard_api.def.
 * encode.c   the hand-written part: what each function records.
 * markers.c  session markers sent on the application's own card handle.
 *
 * Nothing here is exported (the library is built with -fvisibility=hidden).
 */
#pragma once

#include "platform.h"
#include "trace.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- configuration (config.c) ---------------------------------------- */

#define SHIM_ENV_TRACE "PCSCTAP_TRACE"
#define SHIM_ENV_REDACT "PCSCTAP_REDACT"
#define SHIM_ENV_MARKERS "PCSCTAP_MARKERS"
#define SHIM_ENV_REAL_LIBRARY "PCSCTAP_REAL_LIBRARY"
#define SHIM_ENV_VERBOSE "PCSCTAP_VERBOSE"
#define SHIM_ENV_DELEGATE "LIBPCSCLITE_DELEGATE"

/* Used by pcsc-lite >= 2.1 for the real library behind its forwarder. */
#define SHIM_DELEGATE_REAL_LIBRARY "libpcsclite_real.so.1"

struct shim_config {
	const char *trace_path;		/* NULL: no trace */
	bool redact;			/* PIN data of VERIFY & co. */
	bool markers;
	bool verbose;			/* explain binding on stderr */
	bool delegate;			/* loaded as LIBPCSCLITE_DELEGATE */
	const char *real_library;	/* path or name for dlopen */
};

/* Fill @p cfg from the environment (secure_getenv). */
void shim_config_read(struct shim_config *cfg);

/* ---- binding (bind.c) ------------------------------------------------- */

/* The real functions; stubs returning SCARD_F_INTERNAL_ERROR until bound. */
struct shim_real {
#define SCARD_FN(name, params, args) LONG (*name) params;
#include "scard_api.def"
#undef SCARD_FN
	const char *(*pcsc_stringify_error)(const LONG);
};

extern struct shim_real shim_real;
extern struct shim_config shim_config;
/* NULL when tracing is off or the trace could not be opened. */
extern struct trace_writer *shim_writer;

/* Bind, read the configuration and open the trace: once per process. */
void shim_init(void);

/* Warnings and clocks: trace_warnf(), trace_mono_ns(), trace_wall_ns() (util.h). */
int64_t shim_tid(void);

/* ---- one call being recorded (wrappers.c, encode.c) -------------------- */

struct shim_call {
	struct trace_call call;
	int64_t entry_ns;	/* CLOCK_MONOTONIC when the wrapper was entered */
	/* Values of in/out length arguments as the application passed them. */
	DWORD len_in[2];
	bool len_null[2];
	char extra[160];
	size_t extra_len;
	/* Heap memory the encoder needs until the call is written. */
	void *scratch;
};

/* Append one "key=value" word to call->extra. */
void shim_extra(struct shim_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Per function: pre_<name>() sees the arguments before the real call
 * (and may send a marker that belongs before it), post_<name>() the
 * arguments and outputs after it.  Written by hand in encode.c.
 */
#define SCARD_FN(name, params, args) \
	void pre_##name(struct shim_call *c, SHIM_UNPAREN params); \
	void post_##name(struct shim_call *c, LONG rv, SHIM_UNPAREN params);
#include "scard_api.def"
#undef SCARD_FN

/* ---- markers (markers.c) ---------------------------------------------- */

void shim_markers_after_connect(SCARDHANDLE card, const char *reader,
				DWORD share_mode, DWORD preferred, DWORD active);
void shim_markers_after_reconnect(SCARDHANDLE card, DWORD share_mode,
				  DWORD preferred, DWORD initialization, DWORD active);
void shim_markers_after_begin(SCARDHANDLE card);
void shim_markers_before_end(SCARDHANDLE card, DWORD disposition);
void shim_markers_before_disconnect(SCARDHANDLE card, DWORD disposition);
/* The handle is gone (after a successful SCardDisconnect). */
void shim_markers_forget(SCARDHANDLE card);

/* fork handlers */
void shim_markers_lock(void);
void shim_markers_unlock(void);
void shim_markers_child(void);
