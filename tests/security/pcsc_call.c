/*
 * pcsc_call.c — makes one PC/SC call (SCardEstablishContext and, if that
 * worked, SCardReleaseContext) and prints its result.  With an argument it
 * takes the functions from that library (the shim) by dlopen(), because
 * the dynamic loader ignores LD_PRELOAD for a setuid program: the
 * setuid test must still load the shim and reach its code.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
#include <winscard.h>

int
main(int argc, char **argv)
{
	LONG (*establish)(DWORD, LPCVOID, LPCVOID, LPSCARDCONTEXT) = SCardEstablishContext;
	LONG (*release)(SCARDCONTEXT) = SCardReleaseContext;
	SCARDCONTEXT ctx;
	LONG rv;

	if (argc > 1) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);

		if (!h) {
			fprintf(stderr, "pcsc_call: %s\n", dlerror());
			return 2;
		}
		establish = (LONG (*)(DWORD, LPCVOID, LPCVOID, LPSCARDCONTEXT))dlsym(h, "SCardEstablishContext");
		release = (LONG (*)(SCARDCONTEXT))dlsym(h, "SCardReleaseContext");
		if (!establish || !release) {
			fprintf(stderr, "pcsc_call: %s\n", dlerror());
			return 2;
		}
	}
	rv = establish(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (rv == SCARD_S_SUCCESS)
		release(ctx);
	/* The ids tell the setuid test that it ran in secure mode. */
	printf("SCardEstablishContext: 0x%08lX uid=%d euid=%d\n", (unsigned long)rv,
	       (int)getuid(), (int)geteuid());
	return 0;
}
