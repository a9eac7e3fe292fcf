/*
 * bind.c — finding the real libpcsclite, once.
 *
 * Nothing happens at load time: the first exported call runs shim_init()
 * under pthread_once, which reads the configuration, binds every real
 * function, opens the trace and installs the fork handlers.  Until (or
 * unless) binding succeeds every real-function pointer is a stub that
 * returns SCARD_F_INTERNAL_ERROR (pcsc_stringify_error: a fixed message),
 * so a failure is an error code for the application, never a crash or an
 * exit.
 *
 * Where the real functions come from, in order:
 *  1. dlsym(RTLD_NEXT) — LD_PRELOAD in front of a program that links
 *     libpcsclite (skipped when the shim is pcsc-lite's delegate, where
 *     the next libpcsclite.so.1 is the forwarder that called us);
 *  2. dlopen() of the real library by the path found at build time or
 *     PCSCTAP_REAL_LIBRARY — the shim installed as libpcsclite.so.1.
 * Either way a symbol that resolves into this very object is refused:
 * binding to ourselves would recurse forever.
 */
#include "config.h"
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- the PCI structures of the ABI ------------------------------------ */

/*
 * The real library only reads dwProtocol from the PCI it is given, so the
 * application may pass these as well as the real library's.
 */
#define SCARD_PCI(name, protocol) \
	SHIM_EXPORT const SCARD_IO_REQUEST name = { protocol, sizeof(SCARD_IO_REQUEST) };
#include "scard_api.def"
#undef SCARD_PCI

/* ---- stubs -------------------------------------------------------------- */

#define SCARD_FN(name, params, args) \
	static LONG stub_##name params { return SCARD_F_INTERNAL_ERROR; }
#define SCARD_FORWARD(type, name, params, args, stub) \
	static type stub_##name params { return stub; }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "scard_api.def"
#pragma GCC diagnostic pop
#undef SCARD_FN
#undef SCARD_FORWARD

#define SCARD_FN(name, params, args) .name = stub_##name,
#define SCARD_FORWARD(type, name, params, args, stub) .name = stub_##name,
static const struct shim_real stubs = {
#include "scard_api.def"
};

struct shim_real shim_real = {
#include "scard_api.def"
};
#undef SCARD_FN
#undef SCARD_FORWARD

struct shim_config shim_config;
struct trace_writer *shim_writer;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* ---- small helpers ------------------------------------------------------ */

int64_t
shim_tid(void)
{
	/* Cached per thread; a forked child's only thread is re-read below. */
	static __thread pid_t tid;

	if (!tid)
		tid = (pid_t)syscall(SYS_gettid);
	return tid;
}

/* ---- binding ------------------------------------------------------------ */

/* True when @p sym lives in this shared object. */
static bool
is_self(void *sym)
{
	Dl_info self, other;

	if (!dladdr((void *)shim_init, &self) || !dladdr(sym, &other))
		return false;
	return self.dli_fbase == other.dli_fbase;
}

/*
 * Resolve every function from @p handle into @p out.
 * @retval 0 all found, none of them ours
 * @retval -ENOENT one is missing
 * @retval -ELOOP one resolves into the shim itself
 */
static int
resolve_all(void *handle, struct shim_real *out)
{
	void *sym;

#define RESOLVE(type, name, params) \
	sym = dlsym(handle, #name); \
	if (!sym) \
		return -ENOENT; \
	if (is_self(sym)) \
		return -ELOOP; \
	out->name = (type (*) params)sym;
#define SCARD_FN(name, params, args) RESOLVE(LONG, name, params)
#define SCARD_FORWARD(type, name, params, args, stub) RESOLVE(type, name, params)
#include "scard_api.def"
#undef SCARD_FN
#undef SCARD_FORWARD
#undef RESOLVE
	return 0;
}

static void
bind_real(void)
{
	struct shim_real found = stubs;
	void *handle;
	int rv;

#ifdef __APPLE__
	/* dyld does not interpose the interposing image's own references. */
#define SCARD_FN(name, params, args) found.name = name;
#define SCARD_FORWARD(type, name, params, args, stub) found.name = name;
#include "scard_api.def"
#undef SCARD_FN
#undef SCARD_FORWARD
	shim_real = found;
	return;
#endif
	if (!shim_config.delegate) {
		rv = resolve_all(RTLD_NEXT, &found);
		if (rv == 0) {
			if (shim_config.verbose)
				trace_warnf("bound to the next libpcsclite (RTLD_NEXT)");
			shim_real = found;
			return;
		}
	}
	/*
	 * RTLD_LOCAL: the real library's symbols must not join the global
	 * scope where they could shadow ours for later dlopen()s.
	 */
	handle = dlopen(shim_config.real_library, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		trace_warnf("cannot load the real libpcsclite %s: %s",
			  shim_config.real_library, dlerror());
		return;
	}
	rv = resolve_all(handle, &found);
	if (rv == -ELOOP) {
		trace_warnf("%s is pcsctap itself: refusing to bind to it (set %s)",
			  shim_config.real_library, SHIM_ENV_REAL_LIBRARY);
		return;
	}
	if (rv < 0) {
		trace_warnf("%s lacks part of the libpcsclite API", shim_config.real_library);
		return;
	}
	if (shim_config.verbose)
		trace_warnf("bound to %s", shim_config.real_library);
	shim_real = found;
}

/* ---- fork --------------------------------------------------------------- */

static void
atfork_prepare(void)
{
	shim_markers_lock();
}

static void
atfork_parent(void)
{
	shim_markers_unlock();
}

static void
atfork_child(void)
{
	/* A new process: its marker clients and feature cache start empty. */
	shim_markers_child();
}

static void
init_once_fn(void)
{
	int saved = errno;
	struct trace_writer_options opt = { .role = "shim" };
	int rv;

	shim_config_read(&shim_config);
	bind_real();
	if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child))
		trace_warnf("pthread_atfork failed: markers after fork() may stall");
	if (shim_config.trace_path) {
		rv = trace_writer_open(&shim_writer, shim_config.trace_path, &opt);
		if (rv < 0)
			shim_writer = NULL;	/* the writer has warned */
	}
	errno = saved;
}

void
shim_init(void)
{
	pthread_once(&init_once, init_once_fn);
}
