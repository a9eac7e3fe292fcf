/*
 * abi_names.c — print the libpcsclite ABI as scard_api.def lists it, one
 * "name kind" per line (kind: func or data), for tests/shim/abi.sh.
 */
#include "platform.h"

#include <stdio.h>
#include <string.h>

static void
print_other(const char *name)
{
	/* The PCI structures are the only data of the ABI. */
	printf("%s %s\n", name, strncmp(name, "g_rgSCard", 9) ? "func" : "data");
}

int
main(void)
{
#define SCARD_FN(name, params, args) printf("%s func\n", #name);
#define SCARD_OTHER(name) print_other(#name);
#include "scard_api.def"
#undef SCARD_FN
#undef SCARD_OTHER
	return 0;
}
