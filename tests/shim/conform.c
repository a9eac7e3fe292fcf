/*
 * conform.c — the differential conformance client.
 *
 *	conform READER EMPTY_READER CARD_PID
 *
 * Runs a fixed list of scenarios against the PC/SC stack named by
 * PCSCLITE_CSOCK_NAME and prints one line per scenario: its number, its
 * name, the return code(s) and every output, minus what legitimately
 * differs from run to run (handle and context values are printed as
 * "set"/"0"; the event counter in the upper 16 bits of dwEventState is
 * dropped).  tests/shim/conform.sh runs it on a fresh stack without and
 * with the shim and diffs the two outputs: the application must never
 * notice the shim.
 *
 * READER holds the test card, EMPTY_READER is a slot without a card and
 * CARD_PID is the virtual card's process, killed by the last scenarios
 * ("card removed during a session").  Helper modes (run as child
 * processes, under the shim as well): --hold MODE READER, --no-service.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <winscard.h>
#include <reader.h>

static const char *reader, *empty_reader;
static int n_scenario;
static SCARDCONTEXT ctx;

#define BAD_HANDLE ((SCARDHANDLE)0x7AB1E5)
#define BAD_CONTEXT ((SCARDCONTEXT)0x7AB1E5)

static void
begin(const char *name)
{
	printf("%02d %-36s", ++n_scenario, name);
}

static void
end(void)
{
	printf("\n");
	fflush(stdout);
}

static void
out_rv(const char *what, LONG rv)
{
	printf(" %s=0x%08lX", what, (unsigned long)rv);
}

static void
out_dw(const char *what, DWORD v)
{
	printf(" %s=%lu", what, (unsigned long)v);
}

static void
out_handle(const char *what, unsigned long v)
{
	printf(" %s=%s", what, v ? "set" : "0");
}

static void
out_hex(const char *what, const void *p, size_t len)
{
	const unsigned char *b = p;

	printf(" %s=", what);
	if (!p) {
		printf("NULL");
		return;
	}
	for (size_t i = 0; i < len; i++)
		printf("%02X", b[i]);
}

/* A multi-string as a|b|c */
static void
out_ms(const char *what, const char *ms, DWORD len)
{
	printf(" %s=", what);
	if (!ms) {
		printf("NULL");
		return;
	}
	for (DWORD i = 0; i < len; i++)
		putchar(ms[i] ? ms[i] : '|');
}

static LONG
connect_card(SCARDHANDLE *card, DWORD share, DWORD proto, DWORD *active)
{
	return SCardConnect(ctx, reader, share, proto, card, active);
}

/* ---- context and lists ------------------------------------------------ */

static void
s_context(void)
{
	SCARDCONTEXT c = 0, c2 = 0;
	LONG rv;

	begin("establish user");
	rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &c);
	out_rv("rv", rv); out_handle("ctx", c); end();

	begin("establish system");
	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c2);
	out_rv("rv", rv); out_handle("ctx", c2); end();

	begin("establish bad scope");
	rv = SCardEstablishContext(42, NULL, NULL, &ctx);
	out_rv("rv", rv); end();

	begin("establish NULL phContext");
	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, NULL);
	out_rv("rv", rv); end();

	begin("is valid context");
	out_rv("rv", SCardIsValidContext(c)); end();

	begin("is valid context bad");
	out_rv("rv", SCardIsValidContext(BAD_CONTEXT)); end();

	begin("release context");
	out_rv("rv", SCardReleaseContext(c2)); end();

	begin("release context twice");
	out_rv("rv", SCardReleaseContext(c2)); end();

	begin("is valid after release");
	out_rv("rv", SCardIsValidContext(c2)); end();

	begin("release bad context");
	out_rv("rv", SCardReleaseContext(BAD_CONTEXT)); end();
	ctx = c;
}

static void
s_lists(void)
{
	char buf[1024], *autobuf = NULL;
	DWORD len;
	LONG rv;

	begin("list groups size query");
	len = 0;
	rv = SCardListReaderGroups(ctx, NULL, &len);
	out_rv("rv", rv); out_dw("len", len); end();

	begin("list groups buffer");
	len = sizeof(buf);
	rv = SCardListReaderGroups(ctx, buf, &len);
	out_rv("rv", rv); out_ms("groups", rv ? NULL : buf, len); end();

	begin("list groups autoallocate");
	len = SCARD_AUTOALLOCATE;
	rv = SCardListReaderGroups(ctx, (LPSTR)&autobuf, &len);
	out_rv("rv", rv); out_ms("groups", rv ? NULL : autobuf, len);
	out_rv("free", SCardFreeMemory(ctx, autobuf)); end();

	begin("list groups too small");
	len = 1;
	rv = SCardListReaderGroups(ctx, buf, &len);
	out_rv("rv", rv); out_dw("len", len); end();

	begin("list groups bad context");
	len = sizeof(buf);
	out_rv("rv", SCardListReaderGroups(BAD_CONTEXT, buf, &len)); end();

	begin("list readers size query");
	len = 0;
	rv = SCardListReaders(ctx, NULL, NULL, &len);
	out_rv("rv", rv); out_dw("len", len); end();

	begin("list readers buffer");
	len = sizeof(buf);
	rv = SCardListReaders(ctx, NULL, buf, &len);
	out_rv("rv", rv); out_ms("readers", rv ? NULL : buf, len); end();

	begin("list readers autoallocate");
	len = SCARD_AUTOALLOCATE;
	autobuf = NULL;
	rv = SCardListReaders(ctx, NULL, (LPSTR)&autobuf, &len);
	out_rv("rv", rv); out_ms("readers", rv ? NULL : autobuf, len);
	out_rv("free", SCardFreeMemory(ctx, autobuf)); end();

	begin("list readers too small");
	len = 3;
	rv = SCardListReaders(ctx, NULL, buf, &len);
	out_rv("rv", rv); out_dw("len", len); end();

	begin("list readers NULL pcchReaders");
	out_rv("rv", SCardListReaders(ctx, NULL, buf, NULL)); end();

	begin("list readers bad context");
	len = sizeof(buf);
	out_rv("rv", SCardListReaders(BAD_CONTEXT, NULL, buf, &len)); end();

	begin("list readers default group");
	len = sizeof(buf);
	rv = SCardListReaders(ctx, "SCard$DefaultReaders\0", buf, &len);
	out_rv("rv", rv); out_ms("readers", rv ? NULL : buf, len); end();

	/*
	 * A plain C string as mszGroups (pcsc-lite ignores the argument),
	 * ending right before an unmapped page: whoever reads it further than
	 * its NUL faults.
	 */
	begin("list readers groups before a guard page");
	{
		long page = sysconf(_SC_PAGESIZE);
		char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (two == MAP_FAILED || mprotect(two + page, page, PROT_NONE)) {
			printf(" mmap failed");
		} else {
			memcpy(two + page - 2, "X", 2);
			len = sizeof(buf);
			rv = SCardListReaders(ctx, two + page - 2, buf, &len);
			out_rv("rv", rv); out_ms("readers", rv ? NULL : buf, len);
			munmap(two, 2 * page);
		}
	}
	end();

	begin("free memory NULL");
	out_rv("rv", SCardFreeMemory(ctx, NULL)); end();
}

/* ---- status change and cancel ------------------------------------------ */

static void
out_state(const SCARD_READERSTATE *st)
{
	/* The upper 16 bits count events: they differ between runs. */
	out_dw("event", st->dwEventState & 0xFFFF);
	out_hex("atr", st->rgbAtr, st->cbAtr);
}

static void *
cancel_later(void *arg)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	*(LONG *)arg = SCardCancel(ctx);
	return NULL;
}

static void
s_status_change(void)
{
	SCARD_READERSTATE st[2];
	LONG rv, cancel_rv = -1;
	pthread_t t;

	begin("status change unaware");
	memset(st, 0, sizeof(st));
	st[0].szReader = reader;
	st[0].dwCurrentState = SCARD_STATE_UNAWARE;
	rv = SCardGetStatusChange(ctx, 0, st, 1);
	out_rv("rv", rv); out_state(&st[0]); end();

	begin("status change two readers");
	st[0].dwCurrentState = SCARD_STATE_UNAWARE;
	st[1].szReader = empty_reader;
	st[1].dwCurrentState = SCARD_STATE_UNAWARE;
	rv = SCardGetStatusChange(ctx, 0, st, 2);
	out_rv("rv", rv); out_state(&st[0]); out_state(&st[1]); end();

	begin("status change timeout");
	st[0].dwCurrentState = st[0].dwEventState & ~SCARD_STATE_CHANGED;
	rv = SCardGetStatusChange(ctx, 150, st, 1);
	out_rv("rv", rv); out_state(&st[0]); end();

	begin("status change unknown reader");
	st[0].szReader = "No Such Reader 00 00";
	st[0].dwCurrentState = SCARD_STATE_UNAWARE;
	rv = SCardGetStatusChange(ctx, 0, st, 1);
	out_rv("rv", rv); out_dw("event", st[0].dwEventState & 0xFFFF); end();

	/*
	 * The library stops at the first unknown name: a second entry whose
	 * name cannot be read is never looked at (the shim must not either).
	 */
	begin("status change unknown, then unreadable");
	{
		SCARD_READERSTATE two[2];
		char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		memset(two, 0, sizeof(two));
		two[0].szReader = "No Such Reader 00 00";
		two[1].szReader = page == MAP_FAILED ? reader : page;
		rv = SCardGetStatusChange(ctx, 0, two, 2);
		out_rv("rv", rv);
		if (page != MAP_FAILED)
			munmap(page, 4096);
	}
	end();

	begin("status change pnp notification");
	st[0].szReader = "\\\\?PnP?\\Notification";
	st[0].dwCurrentState = 0;
	rv = SCardGetStatusChange(ctx, 0, st, 1);
	out_rv("rv", rv); end();

	/*
	 * The library writes no ATR into the PnP entry nor into an ignored
	 * one: the shim must not record what the application left there
	 * (tests/shim/conform.sh checks the trace).
	 */
	begin("status change pnp + ignored, ATR left");
	{
		SCARD_READERSTATE three[3];

		memset(three, 0, sizeof(three));
		three[0].szReader = reader;
		three[0].dwCurrentState = SCARD_STATE_UNAWARE;
		three[1].szReader = "\\\\?PnP?\\Notification";
		three[2].szReader = empty_reader;
		three[2].dwCurrentState = SCARD_STATE_IGNORE;
		for (int i = 1; i < 3; i++) {
			three[i].cbAtr = sizeof(three[i].rgbAtr);
			memset(three[i].rgbAtr, 0xA5, sizeof(three[i].rgbAtr));
		}
		rv = SCardGetStatusChange(ctx, 0, three, 3);
		out_rv("rv", rv); out_state(&three[0]);
		out_dw("pnp_event", three[1].dwEventState & 0xFFFF);
		out_hex("pnp_atr", three[1].rgbAtr, three[1].cbAtr);
		out_dw("ignored_event", three[2].dwEventState & 0xFFFF);
	}
	end();

	begin("status change NULL states");
	out_rv("rv", SCardGetStatusChange(ctx, 0, NULL, 1)); end();

	begin("status change zero readers");
	out_rv("rv", SCardGetStatusChange(ctx, 0, NULL, 0)); end();

	begin("status change bad context");
	st[0].szReader = reader;
	st[0].dwCurrentState = SCARD_STATE_UNAWARE;
	out_rv("rv", SCardGetStatusChange(BAD_CONTEXT, 0, st, 1)); end();

	begin("status change infinite + cancel");
	st[0].szReader = reader;
	st[0].dwCurrentState = SCARD_STATE_UNAWARE;
	SCardGetStatusChange(ctx, 0, st, 1);
	st[0].dwCurrentState = st[0].dwEventState & ~SCARD_STATE_CHANGED;
	pthread_create(&t, NULL, cancel_later, &cancel_rv);
	rv = SCardGetStatusChange(ctx, INFINITE, st, 1);
	pthread_join(t, NULL);
	out_rv("rv", rv); out_rv("cancel", cancel_rv); end();

	begin("cancel idle");
	out_rv("rv", SCardCancel(ctx)); end();

	begin("cancel bad context");
	out_rv("rv", SCardCancel(BAD_CONTEXT)); end();
}

/* ---- connect, status, transmit, control, attributes --------------------- */

static void
s_connect(void)
{
	SCARDHANDLE card = 0;
	DWORD active = 0;
	LONG rv;

	begin("connect bad context");
	out_rv("rv", SCardConnect(BAD_CONTEXT, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active)); end();

	begin("connect unknown reader");
	out_rv("rv", SCardConnect(ctx, "No Such Reader 00 00", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active)); end();

	begin("connect NULL reader");
	out_rv("rv", SCardConnect(ctx, NULL, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active)); end();

	begin("connect NULL phCard");
	out_rv("rv", SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, NULL, &active)); end();

	begin("connect NULL pdwActiveProtocol");
	rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, NULL);
	out_rv("rv", rv); out_handle("card", rv ? 0 : card); end();
	if (rv == SCARD_S_SUCCESS)
		SCardDisconnect(card, SCARD_LEAVE_CARD);

	begin("connect bad share mode");
	out_rv("rv", SCardConnect(ctx, reader, 42, SCARD_PROTOCOL_T1, &card, &active)); end();

	begin("connect no card (empty slot)");
	out_rv("rv", SCardConnect(ctx, empty_reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active)); end();

	begin("connect direct empty slot");
	rv = SCardConnect(ctx, empty_reader, SCARD_SHARE_DIRECT, 0, &card, &active);
	out_rv("rv", rv); out_dw("active", active); end();
	if (rv == SCARD_S_SUCCESS)
		SCardDisconnect(card, SCARD_LEAVE_CARD);

	static const struct { const char *name; DWORD share, proto; } modes[] = {
		{ "connect shared T0|T1", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1 },
		{ "connect shared T0", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 },
		{ "connect shared T1", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1 },
		{ "connect shared raw", SCARD_SHARE_SHARED, SCARD_PROTOCOL_RAW },
		{ "connect exclusive T1", SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1 },
		{ "connect direct", SCARD_SHARE_DIRECT, 0 },
		{ "connect shared no protocol", SCARD_SHARE_SHARED, 0 },
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		begin(modes[i].name);
		active = 0xFFFF;
		card = 0;
		rv = connect_card(&card, modes[i].share, modes[i].proto, &active);
		out_rv("rv", rv); out_handle("card", card); out_dw("active", active);
		/* Reset: the next connect negotiates its protocol afresh. */
		if (rv == SCARD_S_SUCCESS)
			out_rv("disconnect", SCardDisconnect(card, SCARD_RESET_CARD));
		end();
	}
}

static void
s_status(SCARDHANDLE card)
{
	char name[256], *autoname = NULL;
	unsigned char atr[64], *autoatr = NULL;
	DWORD name_len, atr_len, state, proto;
	LONG rv;

	begin("status buffers");
	name_len = sizeof(name);
	atr_len = sizeof(atr);
	rv = SCardStatus(card, name, &name_len, &state, &proto, atr, &atr_len);
	out_rv("rv", rv); out_ms("reader", rv ? NULL : name, name_len);
	out_dw("state", state); out_dw("proto", proto); out_hex("atr", atr, rv ? 0 : atr_len); end();

	begin("status size query");
	name_len = atr_len = 0;
	rv = SCardStatus(card, NULL, &name_len, NULL, NULL, NULL, &atr_len);
	out_rv("rv", rv); out_dw("name_len", name_len); out_dw("atr_len", atr_len); end();

	begin("status autoallocate");
	name_len = atr_len = SCARD_AUTOALLOCATE;
	rv = SCardStatus(card, (LPSTR)&autoname, &name_len, &state, &proto, (LPBYTE)&autoatr, &atr_len);
	out_rv("rv", rv); out_ms("reader", rv ? NULL : autoname, name_len);
	out_hex("atr", rv ? NULL : autoatr, atr_len);
	if (rv == SCARD_S_SUCCESS) {
		out_rv("free1", SCardFreeMemory(ctx, autoname));
		out_rv("free2", SCardFreeMemory(ctx, autoatr));
	}
	end();

	begin("status reader buffer too small");
	name_len = 2;
	atr_len = sizeof(atr);
	rv = SCardStatus(card, name, &name_len, &state, &proto, atr, &atr_len);
	out_rv("rv", rv); out_dw("name_len", name_len); end();

	begin("status atr buffer too small");
	name_len = sizeof(name);
	atr_len = 1;
	rv = SCardStatus(card, name, &name_len, &state, &proto, atr, &atr_len);
	out_rv("rv", rv); out_dw("atr_len", atr_len); end();

	begin("status all NULL");
	out_rv("rv", SCardStatus(card, NULL, NULL, NULL, NULL, NULL, NULL)); end();

	begin("status bad handle");
	name_len = sizeof(name);
	atr_len = sizeof(atr);
	out_rv("rv", SCardStatus(BAD_HANDLE, name, &name_len, &state, &proto, atr, &atr_len)); end();
}

static void
transmit(const char *name, SCARDHANDLE card, const SCARD_IO_REQUEST *send_pci,
	 const unsigned char *apdu, DWORD apdu_len, SCARD_IO_REQUEST *recv_pci,
	 unsigned char *resp, DWORD *resp_len)
{
	LONG rv;

	begin(name);
	rv = SCardTransmit(card, send_pci, apdu, apdu_len, recv_pci, resp, resp_len);
	out_rv("rv", rv);
	if (resp_len)
		out_dw("len", *resp_len);
	out_hex("resp", rv || !resp || !resp_len ? NULL : resp, resp_len ? *resp_len : 0);
	if (recv_pci && rv == SCARD_S_SUCCESS)
		out_dw("recv_pci", recv_pci->dwProtocol);
	end();
}

static void
s_transmit(SCARDHANDLE card)
{
	static const unsigned char select[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };
	static const unsigned char verify[] = { 0x00, 0x20, 0x00, 0x81, 0x04, 0x31, 0x32, 0x33, 0x34 };
	unsigned char resp[300], big[300];
	SCARD_IO_REQUEST recv_pci;
	DWORD len;

	len = sizeof(resp);
	transmit("transmit T1 select", card, SCARD_PCI_T1, select, sizeof(select), &recv_pci, resp, &len);
	len = sizeof(resp);
	transmit("transmit NULL pioRecvPci", card, SCARD_PCI_T1, select, sizeof(select), NULL, resp, &len);
	len = 1;
	transmit("transmit response too small", card, SCARD_PCI_T1, select, sizeof(select), NULL, resp, &len);
	transmit("transmit NULL pcbRecvLength", card, SCARD_PCI_T1, select, sizeof(select), NULL, resp, NULL);
	len = sizeof(resp);
	transmit("transmit NULL send buffer", card, SCARD_PCI_T1, NULL, 5, NULL, resp, &len);
	len = sizeof(resp);
	transmit("transmit NULL recv buffer", card, SCARD_PCI_T1, select, sizeof(select), NULL, NULL, &len);
	len = sizeof(resp);
	transmit("transmit NULL pioSendPci", card, NULL, select, sizeof(select), NULL, resp, &len);
	len = sizeof(resp);
	transmit("transmit T0 PCI on T1", card, SCARD_PCI_T0, select, sizeof(select), NULL, resp, &len);
	len = sizeof(resp);
	transmit("transmit raw PCI on T1", card, SCARD_PCI_RAW, select, sizeof(select), NULL, resp, &len);
	len = sizeof(resp);
	transmit("transmit VERIFY (PIN)", card, SCARD_PCI_T1, verify, sizeof(verify), NULL, resp, &len);
	memset(big, 0x5A, sizeof(big));
	big[0] = 0x00; big[1] = 0xD6; big[2] = 0; big[3] = 0; big[4] = 0xFF;
	len = sizeof(resp);
	transmit("transmit 260 bytes", card, SCARD_PCI_T1, big, 260, NULL, resp, &len);
	len = sizeof(resp);
	transmit("transmit bad handle", BAD_HANDLE, SCARD_PCI_T1, select, sizeof(select), NULL, resp, &len);
}

static void
s_control(SCARDHANDLE card)
{
	unsigned char out[256];
	DWORD ret;
	LONG rv;

	begin("control feature request");
	ret = 0;
	rv = SCardControl(card, CM_IOCTL_GET_FEATURE_REQUEST, NULL, 0, out, sizeof(out), &ret);
	/* The answer depends on the driver, not on the shim: print it. */
	out_rv("rv", rv); out_hex("out", rv ? NULL : out, ret); end();

	begin("control unknown code");
	ret = 0;
	rv = SCardControl(card, SCARD_CTL_CODE(3999), "\x01\x02", 2, out, sizeof(out), &ret);
	out_rv("rv", rv); out_dw("ret", ret); end();

	begin("control NULL lpBytesReturned");
	out_rv("rv", SCardControl(card, SCARD_CTL_CODE(3999), NULL, 0, out, sizeof(out), NULL)); end();

	begin("control bad handle");
	out_rv("rv", SCardControl(BAD_HANDLE, CM_IOCTL_GET_FEATURE_REQUEST, NULL, 0, out, sizeof(out), &ret)); end();
}

static void
s_attrib(SCARDHANDLE card)
{
	unsigned char buf[256], *autobuf = NULL;
	DWORD len;
	LONG rv;

	begin("get attrib size query");
	len = 0;
	rv = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, NULL, &len);
	out_rv("rv", rv); out_dw("len", len); end();

	begin("get attrib ATR");
	len = sizeof(buf);
	rv = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, buf, &len);
	out_rv("rv", rv); out_hex("value", rv ? NULL : buf, len); end();

	begin("get attrib autoallocate");
	len = SCARD_AUTOALLOCATE;
	rv = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, (LPBYTE)&autobuf, &len);
	out_rv("rv", rv); out_hex("value", rv ? NULL : autobuf, len);
	if (rv == SCARD_S_SUCCESS)
		out_rv("free", SCardFreeMemory(ctx, autobuf));
	end();

	begin("get attrib too small");
	len = 1;
	rv = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, buf, &len);
	out_rv("rv", rv); out_dw("len", len); end();

	begin("get attrib unsupported");
	len = sizeof(buf);
	out_rv("rv", SCardGetAttrib(card, SCARD_ATTR_VALUE(0x7FF0, 0x0001), buf, &len)); end();

	begin("get attrib bad handle");
	len = sizeof(buf);
	out_rv("rv", SCardGetAttrib(BAD_HANDLE, SCARD_ATTR_ATR_STRING, buf, &len)); end();

	begin("get attrib NULL pcbAttrLen");
	out_rv("rv", SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, buf, NULL)); end();

	begin("set attrib");
	out_rv("rv", SCardSetAttrib(card, SCARD_ATTR_VALUE(0x7FF0, 0x0001), (LPCBYTE)"\x01", 1)); end();

	begin("set attrib bad handle");
	out_rv("rv", SCardSetAttrib(BAD_HANDLE, SCARD_ATTR_VALUE(0x7FF0, 0x0001), (LPCBYTE)"\x01", 1)); end();
}

static void
s_transactions(SCARDHANDLE card)
{
	begin("begin/end transaction");
	out_rv("begin", SCardBeginTransaction(card));
	out_rv("end", SCardEndTransaction(card, SCARD_LEAVE_CARD)); end();

	begin("nested transactions");
	out_rv("begin1", SCardBeginTransaction(card));
	out_rv("begin2", SCardBeginTransaction(card));
	out_rv("end2", SCardEndTransaction(card, SCARD_LEAVE_CARD));
	out_rv("end1", SCardEndTransaction(card, SCARD_LEAVE_CARD)); end();

	begin("end without begin");
	out_rv("rv", SCardEndTransaction(card, SCARD_LEAVE_CARD)); end();

	begin("end transaction reset");
	out_rv("begin", SCardBeginTransaction(card));
	out_rv("end", SCardEndTransaction(card, SCARD_RESET_CARD)); end();

	begin("end transaction bad disposition");
	out_rv("begin", SCardBeginTransaction(card));
	out_rv("end", SCardEndTransaction(card, 42));
	out_rv("end2", SCardEndTransaction(card, SCARD_LEAVE_CARD)); end();

	begin("begin transaction bad handle");
	out_rv("rv", SCardBeginTransaction(BAD_HANDLE)); end();

	begin("end transaction bad handle");
	out_rv("rv", SCardEndTransaction(BAD_HANDLE, SCARD_LEAVE_CARD)); end();
}

static void
s_reconnect(SCARDHANDLE card)
{
	static const struct { const char *name; DWORD share, proto, init; } cases[] = {
		{ "reconnect shared T1 leave", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD },
		{ "reconnect shared T0|T1 reset", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_RESET_CARD },
		{ "reconnect exclusive T1 unpower", SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, SCARD_UNPOWER_CARD },
		{ "reconnect shared T1 leave again", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD },
		{ "reconnect bad share mode", 42, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD },
		{ "reconnect bad initialization", SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, 42 },
	};
	DWORD active;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		begin(cases[i].name);
		active = 0xFFFF;
		out_rv("rv", SCardReconnect(card, cases[i].share, cases[i].proto, cases[i].init, &active));
		out_dw("active", active); end();
	}
	begin("reconnect NULL pdwActiveProtocol");
	out_rv("rv", SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD, NULL)); end();

	begin("reconnect bad handle");
	out_rv("rv", SCardReconnect(BAD_HANDLE, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD, &active)); end();
}

static void
s_disconnect(void)
{
	static const struct { const char *name; DWORD disposition; } cases[] = {
		{ "disconnect leave", SCARD_LEAVE_CARD },
		{ "disconnect reset", SCARD_RESET_CARD },
		{ "disconnect unpower", SCARD_UNPOWER_CARD },
		{ "disconnect eject", SCARD_EJECT_CARD },
		{ "disconnect bad disposition", 42 },
	};
	SCARDHANDLE card;
	DWORD active;
	LONG rv;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		begin(cases[i].name);
		rv = connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active);
		out_rv("connect", rv);
		out_rv("rv", SCardDisconnect(card, cases[i].disposition));
		out_rv("twice", SCardDisconnect(card, SCARD_LEAVE_CARD)); end();
	}
	begin("disconnect bad handle");
	out_rv("rv", SCardDisconnect(BAD_HANDLE, SCARD_LEAVE_CARD)); end();
}

/* ---- two processes ------------------------------------------------------ */

struct holder {
	pid_t pid;
	FILE *to, *from;
};

/* Start "conform --hold MODE READER" and wait until it holds the card. */
static int
hold(struct holder *h, const char *self, const char *mode)
{
	int in[2], out[2];
	char line[64];

	if (pipe(in) || pipe(out))
		return -1;
	fflush(stdout);
	h->pid = fork();
	if (h->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(self, self, "--hold", mode, reader, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	h->to = fdopen(in[1], "w");
	h->from = fdopen(out[0], "r");
	if (!fgets(line, sizeof(line), h->from))
		return -1;
	printf(" holder=%.*s", (int)strcspn(line, "\n"), line);
	return 0;
}

static void
release(struct holder *h)
{
	int status;

	fclose(h->to);
	while (fgetc(h->from) != EOF)
		;
	fclose(h->from);
	waitpid(h->pid, &status, 0);
	printf(" holder_exit=%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

struct blocked_transmit {
	SCARDHANDLE card;
	LONG rv;
};

static void *
transmit_thread(void *arg)
{
	struct blocked_transmit *bt = arg;
	unsigned char resp[64];
	DWORD len = sizeof(resp);

	bt->rv = SCardTransmit(bt->card, SCARD_PCI_T1, (LPCBYTE)"\x00\xA4\x04\x00\x00", 5, NULL, resp, &len);
	return NULL;
}

static void
s_two_processes(const char *self)
{
	SCARDHANDLE card;
	struct holder h;
	DWORD active;
	LONG rv;

	begin("other exclusive, we shared");
	if (hold(&h, self, "exclusive") == 0) {
		out_rv("rv", connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active));
		release(&h);
	}
	end();

	begin("other shared, we exclusive");
	if (hold(&h, self, "shared") == 0) {
		out_rv("rv", connect_card(&card, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, &active));
		rv = connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active);
		out_rv("shared", rv);
		if (rv == SCARD_S_SUCCESS)
			out_rv("disconnect", SCardDisconnect(card, SCARD_LEAVE_CARD));
		release(&h);
	}
	end();

	begin("other in transaction");
	rv = connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active);
	out_rv("connect", rv);
	if (hold(&h, self, "transaction") == 0) {
		struct blocked_transmit bt = { .card = card };
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		pthread_t t;

		/* Our transmit waits for the other's transaction to end. */
		pthread_create(&t, NULL, transmit_thread, &bt);
		nanosleep(&ts, NULL);
		release(&h);
		pthread_join(t, NULL);
		out_rv("transmit", bt.rv);
		out_rv("begin after", SCardBeginTransaction(card));
		out_rv("end after", SCardEndTransaction(card, SCARD_LEAVE_CARD));
	}
	if (rv == SCARD_S_SUCCESS)
		out_rv("disconnect", SCardDisconnect(card, SCARD_LEAVE_CARD));
	end();
}

static int
hold_main(const char *mode, const char *rdr)
{
	SCARDCONTEXT c;
	SCARDHANDLE card;
	DWORD active;
	LONG rv;
	int ch;

	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c);
	if (rv == SCARD_S_SUCCESS)
		rv = SCardConnect(c, rdr, strcmp(mode, "exclusive") ? SCARD_SHARE_SHARED : SCARD_SHARE_EXCLUSIVE,
				  SCARD_PROTOCOL_T1, &card, &active);
	if (rv == SCARD_S_SUCCESS && !strcmp(mode, "transaction"))
		rv = SCardBeginTransaction(card);
	printf("0x%08lX\n", (unsigned long)rv);
	fflush(stdout);
	while ((ch = getchar()) != EOF)
		;
	if (!strcmp(mode, "transaction"))
		SCardEndTransaction(card, SCARD_LEAVE_CARD);
	SCardDisconnect(card, SCARD_LEAVE_CARD);
	SCardReleaseContext(c);
	return 0;
}

/* ---- pcscd not running, card removed ------------------------------------ */

static void
s_no_service(const char *self)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* The socket name is read once per process: a new process. */
		setenv("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm", 1);
		execl(self, self, "--no-service", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
}

static int
no_service_main(void)
{
	SCARDCONTEXT c = 0;
	DWORD len = 0;

	n_scenario = 200;
	begin("no service: establish");
	out_rv("rv", SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &c)); out_handle("ctx", c); end();
	begin("no service: list readers");
	out_rv("rv", SCardListReaders(c, NULL, NULL, &len)); end();
	begin("no service: is valid");
	out_rv("rv", SCardIsValidContext(c)); end();
	return 0;
}

static void
s_card_removed(pid_t card_pid)
{
	SCARD_READERSTATE st = { .szReader = reader, .dwCurrentState = SCARD_STATE_UNAWARE };
	unsigned char resp[64];
	SCARDHANDLE card;
	DWORD active, len;
	LONG rv;
	int i;

	begin("card removed: connect");
	rv = connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active);
	out_rv("rv", rv);
	out_rv("begin", SCardBeginTransaction(card)); end();

	kill(card_pid, SIGKILL);
	/* Bounded wait for pcscd to notice (it polls every 400 ms). */
	SCardGetStatusChange(ctx, 0, &st, 1);
	for (i = 0; i < 50 && (st.dwEventState & SCARD_STATE_PRESENT); i++) {
		st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
		SCardGetStatusChange(ctx, 200, &st, 1);
	}
	begin("card removed: status change");
	out_dw("event", st.dwEventState & 0xFFFF); end();

	begin("card removed: transmit");
	len = sizeof(resp);
	out_rv("rv", SCardTransmit(card, SCARD_PCI_T1, (LPCBYTE)"\x00\xA4\x04\x00\x00", 5, NULL, resp, &len)); end();

	begin("card removed: status");
	len = 0;
	out_rv("rv", SCardStatus(card, NULL, &len, NULL, NULL, NULL, NULL)); end();

	begin("card removed: end transaction");
	out_rv("rv", SCardEndTransaction(card, SCARD_LEAVE_CARD)); end();

	begin("card removed: reconnect");
	out_rv("rv", SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD, &active)); end();

	begin("card removed: disconnect");
	out_rv("rv", SCardDisconnect(card, SCARD_LEAVE_CARD)); end();

	begin("card removed: connect again");
	out_rv("rv", connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active)); end();
}

int
main(int argc, char **argv)
{
	SCARDHANDLE card = 0;
	DWORD active;
	LONG rv;

	if (argc == 4 && !strcmp(argv[1], "--hold"))
		return hold_main(argv[2], argv[3]);
	if (argc == 2 && !strcmp(argv[1], "--no-service"))
		return no_service_main();
	if (argc != 4) {
		fprintf(stderr, "usage: conform READER EMPTY_READER CARD_PID\n");
		return 2;
	}
	reader = argv[1];
	empty_reader = argv[2];

	s_context();
	s_lists();
	s_status_change();
	s_connect();

	begin("session connect shared T1");
	rv = connect_card(&card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &active);
	out_rv("rv", rv); out_dw("active", active); end();
	s_status(card);
	s_transmit(card);
	s_control(card);
	s_attrib(card);
	s_transactions(card);
	s_reconnect(card);
	begin("session disconnect");
	out_rv("rv", SCardDisconnect(card, SCARD_LEAVE_CARD)); end();

	s_disconnect();
	s_two_processes(argv[0]);
	s_no_service(argv[0]);
	n_scenario = 210;
	s_card_removed((pid_t)atoi(argv[3]));

	begin("release context");
	out_rv("rv", SCardReleaseContext(ctx)); end();
	return 0;
}
