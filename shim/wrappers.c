/*
 * wrappers.c — the exported libpcsclite functions, generated from
 * scard_api.def.  Every wrapper has the same shape:
 *
 *	bind once; if this thread is already inside the shim (the real
 *	library calling an exported name, or tracing calling back), just
 *	forward; else note the entry, let pre_<name>() look at the
 *	arguments, call the real function (timed alone), let post_<name>()
 *	record the outputs, enqueue the call and return the real result.
 *
 * errno: the application sees errno as it was on entry until the real
 * call, and as the real call left it afterwards; nothing the shim does in
 * between (clock reads, markers, the trace queue) leaks into it.
 * No lock is held across a real call, so SCardGetStatusChange(INFINITE)
 * and SCardCancel from another thread behave as without the shim.
 */
#include "shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Depth of shim frames on this thread. */
static __thread int shim_depth;

static void
call_begin(struct shim_call *c, int fn)
{
	memset(&c->call, 0, sizeof(c->call));
	c->call.fn = fn;
	c->call.tid = shim_tid();
	c->call.wall_ns = trace_wall_ns();
	c->entry_ns = trace_mono_ns();
	c->extra_len = 0;
	c->extra[0] = '\0';
	c->scratch = NULL;
	c->len_in[0] = c->len_in[1] = 0;
	c->len_null[0] = c->len_null[1] = false;
}

/*
 * The recorded times are the real call's alone; what the shim did around
 * it (feature discovery, markers, copying arguments) is shim_ns.
 */
static void
call_end(struct shim_call *c, LONG rv)
{
	c->call.shim_ns = (c->call.t_enter_ns - c->entry_ns) + (trace_mono_ns() - c->call.t_return_ns);
	c->call.rv = rv;
	c->call.extra = c->extra_len ? c->extra : NULL;
	if (shim_writer)
		trace_write_call(shim_writer, &c->call);
	free(c->scratch);
}

#define SCARD_FN(name, params, args) \
	SHIM_WRAPPER_ATTR LONG \
	SHIM_WRAPPER(name) params \
	{ \
		struct shim_call c; \
		int saved_errno = errno; \
		LONG rv; \
	\
		shim_init(); \
		if (shim_depth > 0) { \
			errno = saved_errno; \
			return shim_real.name args; \
		} \
		shim_depth++; \
		call_begin(&c, TRACE_FN_##name); \
		pre_##name(&c, SHIM_UNPAREN args); \
		errno = saved_errno; \
		c.call.t_enter_ns = trace_mono_ns(); \
		rv = shim_real.name args; \
		c.call.t_return_ns = trace_mono_ns(); \
		saved_errno = errno; \
		post_##name(&c, rv, SHIM_UNPAREN args); \
		call_end(&c, rv); \
		shim_depth--; \
		errno = saved_errno; \
		return rv; \
	}
#include "scard_api.def"
#undef SCARD_FN

#ifdef __APPLE__
/*
 * dyld's interpose table: { replacement, replacee }.  SCardControl is
 * SCardControl132 here (platform.h); the legacy five-argument
 * SCardControl of PCSC.framework is left alone and not traced.
 */
struct shim_interpose {
	const void *replacement;
	const void *replacee;
};

__attribute__((used, section("__DATA,__interpose")))
static const struct shim_interpose shim_interpose_table[] = {
#define SCARD_FN(name, params, args) \
	{ (const void *)SHIM_WRAPPER(name), (const void *)name },
#include "scard_api.def"
#undef SCARD_FN
	{ (const void *)SHIM_WRAPPER(pcsc_stringify_error), (const void *)pcsc_stringify_error },
};
#endif
