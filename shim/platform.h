/*
 * platform.h — every difference between Linux and macOS in one place.
 *
 * Linux: the wrappers carry the libpcsclite names and are found through
 * LD_PRELOAD, LD_LIBRARY_PATH or an explicit dlopen; the real functions
 * come from dlsym(RTLD_NEXT) or from the real library opened by path.
 *
 * macOS (written, not tested here): the dylib is loaded with
 * DYLD_INSERT_LIBRARIES and dyld's __DATA,__interpose section swaps the
 * application's references; the wrappers therefore carry other names
 * (pcsctap_SCard*) and call the real functions by their own names, which
 * dyld does not interpose inside the interposing image.  PCSC.framework
 * uses 32-bit DWORD/LONG and exports the part 10 SCardControl as
 * SCardControl132 (its SCardControl is the legacy five-argument one).
 */
#pragma once

/*
 * winscard.h declares every function with PCSC_API: making it "default"
 * exports exactly those declarations from a library otherwise built with
 * -fvisibility=hidden.
 */
#ifndef __APPLE__
#define PCSC_API __attribute__((visibility("default")))
#endif

#ifdef __APPLE__
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#else
#include <winscard.h>
#include <reader.h>
#endif

#define SHIM_EXPORT __attribute__((visibility("default")))

#ifndef SCARD_CTL_CODE
#define SCARD_CTL_CODE(code) (0x42000000 + (code))
#endif
#ifndef CM_IOCTL_GET_FEATURE_REQUEST
#define CM_IOCTL_GET_FEATURE_REQUEST SCARD_CTL_CODE(3400)
#endif
#ifndef SCARD_AUTOALLOCATE
#define SCARD_AUTOALLOCATE (DWORD)(-1)
#endif

#ifdef __APPLE__
/* Wrappers get their own names; the interpose table maps them. */
#define SHIM_WRAPPER(name) pcsctap_##name
#define SHIM_WRAPPER_ATTR static
/*
 * The part 10 SCardControl is SCardControl132 there: after the headers,
 * every use of the table's SCardControl entry (real pointer, wrapper,
 * interpose entry) becomes SCardControl132, while names built with ##
 * (TRACE_FN_SCardControl, pre_SCardControl) keep the portable name.
 */
#define SCardControl SCardControl132
#else
#define SHIM_WRAPPER(name) name
#define SHIM_WRAPPER_ATTR SHIM_EXPORT
#endif

/* Strip the parentheses of a table column: UNPAREN (a, b) -> a, b */
#define SHIM_UNPAREN(...) __VA_ARGS__
