/*
 * abi_names.c — print the libpcsclite ABI as scard_api.def lists it, one
 * "name kind" per line (kind: func or data), for tests/shim/abi.sh.
 */
#include "platform.h"

#include <stdio.h>

int
main(void)
{
#define SCARD_FN(name, params, args) printf("%s func\n", #name);
#define SCARD_FORWARD(type, name, params, args, stub) printf("%s func\n", #name);
#define SCARD_PCI(name, protocol) printf("%s data\n", #name);
#include "scard_api.def"
#undef SCARD_FN
#undef SCARD_FORWARD
#undef SCARD_PCI
	return 0;
}
