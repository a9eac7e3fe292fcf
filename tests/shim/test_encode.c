/*
 * test_encode.c — what the shim records for each SCard* function
 * (shim/encode.c, through the real wrappers of wrappers.c), against a fake
 * real library: every entry of shim_real is pointed at a fake below, and
 * trace_write_call() is wrapped (-Wl,--wrap) to capture the call the shim
 * hands to the trace writer.  Covered per function: the fields of
 * docs/trace-schema.md, NULL arguments, in/out lengths (size queries,
 * short buffers, SCARD_AUTOALLOCATE), lengths the real library would
 * reject (never read), failures (no output recorded), and that return
 * codes and errno reach the caller unchanged.
 */
#include "shim.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the capture of trace_write_call() ----------------------------------- */

#define CAP_BYTES 512

static struct captured {
	int calls;		/* trace_write_call() invocations */
	struct trace_call call;	/* pointers below point into this struct */
	char reader[MAX_READERNAME];
	uint8_t in[CAP_BYTES], out[CAP_BYTES];
	char extra[256];
	struct trace_reader_state states[4];
	char state_reader[4][MAX_READERNAME];
	uint8_t state_atr[4][MAX_ATR_SIZE + 8];
} got;

static void
copy_blob(struct trace_blob *dst, const struct trace_blob *src, uint8_t *buf, size_t room)
{
	cr_assert_leq(src->len, room, "blob of %zu bytes", src->len);
	*dst = *src;
	if (src->data) {
		memcpy(buf, src->data, src->len);
		dst->data = buf;
	}
}

void __wrap_trace_write_call(struct trace_writer *w, const struct trace_call *call);

void
__wrap_trace_write_call(struct trace_writer *w, const struct trace_call *call)
{
	got.calls++;
	got.call = *call;
	if (call->reader) {
		snprintf(got.reader, sizeof(got.reader), "%s", call->reader);
		got.call.reader = got.reader;
	}
	copy_blob(&got.call.in, &call->in, got.in, sizeof(got.in));
	copy_blob(&got.call.out, &call->out, got.out, sizeof(got.out));
	if (call->extra) {
		snprintf(got.extra, sizeof(got.extra), "%s", call->extra);
		got.call.extra = got.extra;
	}
	cr_assert_leq(call->n_states, 4);
	for (size_t i = 0; i < call->n_states; i++) {
		got.states[i] = call->states[i];
		if (call->states[i].reader) {
			snprintf(got.state_reader[i], sizeof(got.state_reader[i]), "%s",
				 call->states[i].reader);
			got.states[i].reader = got.state_reader[i];
		}
		copy_blob(&got.states[i].atr, &call->states[i].atr, got.state_atr[i],
			  sizeof(got.state_atr[i]));
	}
	got.call.states = got.states;
}

/* ---- the fake real library ------------------------------------------------ */

/* What the next fake call does. */
static struct {
	LONG rv;
	int errno_set;		/* errno the fake leaves */
	int errno_seen;		/* errno the fake found on entry */
	const void *data;	/* output bytes (or multi-string) */
	DWORD len;		/* output length returned */
	int calls;
} fake;

static uint8_t autoalloc[CAP_BYTES];

/* Write fake.data into an application buffer the way pcsc-lite does. */
static LONG
fill(void *buf, LPDWORD plen, bool autoallocate_ok)
{
	fake.calls++;
	fake.errno_seen = errno;
	if (!plen) {
		errno = fake.errno_set;
		return SCARD_E_INVALID_PARAMETER;
	}
	if (fake.rv != SCARD_S_SUCCESS) {
		if (fake.rv == SCARD_E_INSUFFICIENT_BUFFER)
			*plen = fake.len;
		goto out;
	}
	if (autoallocate_ok && buf && *plen == SCARD_AUTOALLOCATE) {
		memcpy(autoalloc, fake.data, fake.len);
		*(uint8_t **)buf = autoalloc;
	} else if (buf) {
		memcpy(buf, fake.data, fake.len);
	}
	*plen = fake.len;
out:
	errno = fake.errno_set;
	return fake.rv;
}

static LONG
done(void)
{
	fake.calls++;
	fake.errno_seen = errno;
	errno = fake.errno_set;
	return fake.rv;
}

static LONG
fake_SCardEstablishContext(DWORD dwScope, LPCVOID r1, LPCVOID r2, LPSCARDCONTEXT phContext)
{
	if (fake.rv == SCARD_S_SUCCESS && phContext)
		*phContext = 0x1234;
	return done();
}

static LONG
fake_context(SCARDCONTEXT hContext)
{
	return done();
}

static LONG
fake_SCardConnect(SCARDCONTEXT hContext, LPCSTR szReader, DWORD dwShareMode,
		  DWORD dwPreferredProtocols, LPSCARDHANDLE phCard, LPDWORD pdwActiveProtocol)
{
	if (fake.rv == SCARD_S_SUCCESS) {
		if (phCard)
			*phCard = 0xCAFE;
		if (pdwActiveProtocol)
			*pdwActiveProtocol = SCARD_PROTOCOL_T1;
	}
	return done();
}

static LONG
fake_SCardReconnect(SCARDHANDLE hCard, DWORD dwShareMode, DWORD dwPreferredProtocols,
		    DWORD dwInitialization, LPDWORD pdwActiveProtocol)
{
	if (fake.rv == SCARD_S_SUCCESS && pdwActiveProtocol)
		*pdwActiveProtocol = SCARD_PROTOCOL_T0;
	return done();
}

static LONG
fake_card_disposition(SCARDHANDLE hCard, DWORD dwDisposition)
{
	return done();
}

static LONG
fake_card(SCARDHANDLE hCard)
{
	return done();
}

static const uint8_t atr[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };

static LONG
fake_SCardStatus(SCARDHANDLE hCard, LPSTR mszReaderName, LPDWORD pcchReaderLen, LPDWORD pdwState,
		 LPDWORD pdwProtocol, LPBYTE pbAtr, LPDWORD pcbAtrLen)
{
	LONG rv = fill(mszReaderName, pcchReaderLen, true);

	if (fake.rv == SCARD_S_SUCCESS) {
		if (pdwState)
			*pdwState = SCARD_SPECIFIC;
		if (pdwProtocol)
			*pdwProtocol = SCARD_PROTOCOL_T1;
		if (pcbAtrLen) {
			if (pbAtr)
				memcpy(pbAtr, atr, sizeof(atr));
			*pcbAtrLen = sizeof(atr);
		}
	}
	return rv;
}

static LONG
fake_SCardGetStatusChange(SCARDCONTEXT hContext, DWORD dwTimeout, SCARD_READERSTATE *rgReaderStates,
			  DWORD cReaders)
{
	for (DWORD i = 0; rgReaderStates && i < cReaders; i++) {
		rgReaderStates[i].dwEventState = SCARD_STATE_CHANGED | SCARD_STATE_PRESENT;
		memcpy(rgReaderStates[i].rgbAtr, atr, sizeof(atr));
		rgReaderStates[i].cbAtr = sizeof(atr);
	}
	return done();
}

static LONG
fake_SCardControl(SCARDHANDLE hCard, DWORD dwControlCode, LPCVOID pbSendBuffer, DWORD cbSendLength,
		  LPVOID pbRecvBuffer, DWORD cbRecvLength, LPDWORD lpBytesReturned)
{
	if (lpBytesReturned) {
		if (fake.rv == SCARD_S_SUCCESS && pbRecvBuffer)
			memcpy(pbRecvBuffer, fake.data, fake.len);
		*lpBytesReturned = fake.len;
	}
	return done();
}

static LONG
fake_SCardTransmit(SCARDHANDLE hCard, const SCARD_IO_REQUEST *pioSendPci, LPCBYTE pbSendBuffer,
		   DWORD cbSendLength, SCARD_IO_REQUEST *pioRecvPci, LPBYTE pbRecvBuffer,
		   LPDWORD pcbRecvLength)
{
	if (fake.rv == SCARD_S_SUCCESS && pioRecvPci)
		pioRecvPci->dwProtocol = SCARD_PROTOCOL_T1;
	return fill(pbRecvBuffer, pcbRecvLength, false);
}

static LONG
fake_SCardListReaderGroups(SCARDCONTEXT hContext, LPSTR mszGroups, LPDWORD pcchGroups)
{
	return fill(mszGroups, pcchGroups, true);
}

static LONG
fake_SCardListReaders(SCARDCONTEXT hContext, LPCSTR mszGroups, LPSTR mszReaders,
		      LPDWORD pcchReaders)
{
	return fill(mszReaders, pcchReaders, true);
}

static LONG
fake_SCardFreeMemory(SCARDCONTEXT hContext, LPCVOID pvMem)
{
	return done();
}

static LONG
fake_SCardGetAttrib(SCARDHANDLE hCard, DWORD dwAttrId, LPBYTE pbAttr, LPDWORD pcbAttrLen)
{
	return fill(pbAttr, pcbAttrLen, true);
}

static LONG
fake_SCardSetAttrib(SCARDHANDLE hCard, DWORD dwAttrId, LPCBYTE pbAttr, DWORD cbAttrLen)
{
	return done();
}

static const char *
fake_pcsc_stringify_error(const LONG err)
{
	fake.calls++;
	return "fake error text";
}

static const struct shim_real fakes = {
	.SCardEstablishContext = fake_SCardEstablishContext,
	.SCardReleaseContext = fake_context,
	.SCardIsValidContext = fake_context,
	.SCardConnect = fake_SCardConnect,
	.SCardReconnect = fake_SCardReconnect,
	.SCardDisconnect = fake_card_disposition,
	.SCardBeginTransaction = fake_card,
	.SCardEndTransaction = fake_card_disposition,
	.SCardStatus = fake_SCardStatus,
	.SCardGetStatusChange = fake_SCardGetStatusChange,
	.SCardControl = fake_SCardControl,
	.SCardTransmit = fake_SCardTransmit,
	.SCardListReaderGroups = fake_SCardListReaderGroups,
	.SCardListReaders = fake_SCardListReaders,
	.SCardFreeMemory = fake_SCardFreeMemory,
	.SCardCancel = fake_context,
	.SCardGetAttrib = fake_SCardGetAttrib,
	.SCardSetAttrib = fake_SCardSetAttrib,
	.pcsc_stringify_error = fake_pcsc_stringify_error,
};

/* Never dereferenced: the wrapped trace_write_call() only needs it non-NULL. */
static char writer_token;

static void
setup(void)
{
	/* Markers would ask the fake SCardControl for features: covered elsewhere. */
	setenv("PCSCTAP_MARKERS", "0", 1);
	unsetenv("PCSCTAP_TRACE");
	unsetenv("PCSCTAP_REDACT");
	shim_init();
	shim_real = fakes;
	shim_writer = (struct trace_writer *)&writer_token;
	memset(&got, 0, sizeof(got));
	memset(&fake, 0, sizeof(fake));
}

TestSuite(encode, .init = setup, .timeout = 30);

/* The extra words as one string ("" when none). */
static const char *
extra(void)
{
	return got.call.extra ? got.call.extra : "";
}

static bool
has_word(const char *word)
{
	const char *e = extra(), *p = e;
	size_t n = strlen(word);

	while ((p = strstr(p, word))) {
		if ((p == e || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

#define expect_word(w) cr_expect(has_word(w), "extra lacks '%s': '%s'", w, extra())
#define expect_no_word(w) cr_expect(!has_word(w), "extra has '%s': '%s'", w, extra())

/* The word NAME=N for a length one past what pcsc-lite accepts. */
static void
expect_oversized(const char *name)
{
	char word[64];

	snprintf(word, sizeof(word), "%s=%lu", name, (unsigned long)MAX_BUFFER_SIZE_EXTENDED + 1);
	expect_word(word);
}

static void
expect_recorded(int fn, LONG rv)
{
	cr_assert_eq(got.calls, 1, "trace_write_call() ran %d times", got.calls);
	cr_expect_eq(got.call.fn, fn);
	cr_expect_eq(got.call.rv, rv);
	cr_expect_leq(got.call.t_enter_ns, got.call.t_return_ns);
	cr_expect_gt(got.call.tid, 0);
}

/* ---- every function -------------------------------------------------------- */

Test(encode, establish_context)
{
	SCARDCONTEXT ctx = 0;

	cr_assert_eq(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardEstablishContext, SCARD_S_SUCCESS);
	cr_expect_eq(ctx, 0x1234);
	cr_expect(got.call.present & TRACE_HAS_SCOPE);
	cr_expect_eq(got.call.scope, SCARD_SCOPE_SYSTEM);
	cr_expect(got.call.present & TRACE_HAS_CONTEXT);
	cr_expect_eq(got.call.context, 0x1234);
	cr_expect_str_eq(extra(), "");
}

Test(encode, establish_context_null_and_failure)
{
	fake.rv = SCARD_E_NO_SERVICE;
	cr_assert_eq(SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, NULL), SCARD_E_NO_SERVICE);
	expect_recorded(TRACE_FN_SCardEstablishContext, SCARD_E_NO_SERVICE);
	cr_expect(!(got.call.present & TRACE_HAS_CONTEXT));
	expect_word("phContext=NULL");
}

Test(encode, context_only_functions)
{
	static const struct {
		LONG (*fn)(SCARDCONTEXT);
		int id;
	} cases[] = {
		{ SCardReleaseContext, TRACE_FN_SCardReleaseContext },
		{ SCardIsValidContext, TRACE_FN_SCardIsValidContext },
		{ SCardCancel, TRACE_FN_SCardCancel },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&got, 0, sizeof(got));
		fake.rv = i == 1 ? SCARD_E_INVALID_HANDLE : SCARD_S_SUCCESS;
		cr_assert_eq(cases[i].fn(0x77), fake.rv);
		expect_recorded(cases[i].id, fake.rv);
		cr_expect(got.call.present & TRACE_HAS_CONTEXT);
		cr_expect_eq(got.call.context, 0x77);
	}
}

Test(encode, connect)
{
	SCARDHANDLE card = 0;
	DWORD active = 0;

	cr_assert_eq(SCardConnect(0x77, "Reader 00 00", SCARD_SHARE_SHARED,
				  SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &active),
		     SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardConnect, SCARD_S_SUCCESS);
	cr_expect_eq(card, 0xCAFE);
	cr_expect_eq(active, SCARD_PROTOCOL_T1);
	cr_expect_str_eq(got.call.reader, "Reader 00 00");
	cr_expect_eq(got.call.context, 0x77);
	cr_expect_eq(got.call.share_mode, SCARD_SHARE_SHARED);
	cr_expect_eq(got.call.preferred_protocols, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1);
	cr_expect(got.call.present & TRACE_HAS_CARD);
	cr_expect_eq(got.call.card, 0xCAFE);
	cr_expect(got.call.present & TRACE_HAS_ACTIVE_PROTOCOL);
	cr_expect_eq(got.call.active_protocol, SCARD_PROTOCOL_T1);
}

Test(encode, connect_nulls_and_failure)
{
	SCARDHANDLE card = 0;

	fake.rv = SCARD_E_INVALID_PARAMETER;
	cr_assert_eq(SCardConnect(0x77, NULL, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, NULL, NULL),
		     SCARD_E_INVALID_PARAMETER);
	expect_recorded(TRACE_FN_SCardConnect, SCARD_E_INVALID_PARAMETER);
	cr_expect_null(got.call.reader);
	expect_word("szReader=NULL");
	expect_word("phCard=NULL");
	expect_word("pdwActiveProtocol=NULL");
	cr_expect(!(got.call.present & TRACE_HAS_CARD));

	/* Success without an active-protocol pointer: the card, no protocol. */
	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_S_SUCCESS;
	cr_assert_eq(SCardConnect(0x77, "R", SCARD_SHARE_DIRECT, 0, &card, NULL), SCARD_S_SUCCESS);
	cr_expect_eq(got.call.card, 0xCAFE);
	cr_expect(!(got.call.present & TRACE_HAS_ACTIVE_PROTOCOL));
}

Test(encode, reconnect)
{
	DWORD active = 0;

	cr_assert_eq(SCardReconnect(0xCAFE, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0, SCARD_RESET_CARD,
				    &active),
		     SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardReconnect, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.card, 0xCAFE);
	cr_expect_eq(got.call.share_mode, SCARD_SHARE_SHARED);
	cr_expect_eq(got.call.preferred_protocols, SCARD_PROTOCOL_T0);
	cr_expect(got.call.present & TRACE_HAS_DISPOSITION);
	cr_expect_eq(got.call.disposition, SCARD_RESET_CARD);
	cr_expect_eq(got.call.active_protocol, SCARD_PROTOCOL_T0);

	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_W_REMOVED_CARD;
	cr_assert_eq(SCardReconnect(0xCAFE, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0, SCARD_LEAVE_CARD,
				    NULL),
		     SCARD_W_REMOVED_CARD);
	expect_word("pdwActiveProtocol=NULL");
	cr_expect(!(got.call.present & TRACE_HAS_ACTIVE_PROTOCOL));
}

Test(encode, disconnect_and_transactions)
{
	cr_assert_eq(SCardBeginTransaction(0xCAFE), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardBeginTransaction, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.card, 0xCAFE);
	cr_expect(!(got.call.present & TRACE_HAS_DISPOSITION));

	memset(&got, 0, sizeof(got));
	cr_assert_eq(SCardEndTransaction(0xCAFE, SCARD_LEAVE_CARD), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardEndTransaction, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.disposition, SCARD_LEAVE_CARD);

	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_E_INVALID_HANDLE;
	cr_assert_eq(SCardDisconnect(0xCAFE, SCARD_UNPOWER_CARD), SCARD_E_INVALID_HANDLE);
	expect_recorded(TRACE_FN_SCardDisconnect, SCARD_E_INVALID_HANDLE);
	cr_expect(got.call.present & TRACE_HAS_DISPOSITION);
	cr_expect_eq(got.call.disposition, SCARD_UNPOWER_CARD);
}

static const char reader_ms[] = "Reader 00 00\0";	/* one name: a multi-string */

Test(encode, status)
{
	char name[64];
	uint8_t buf[MAX_ATR_SIZE];
	DWORD name_len = sizeof(name), atr_len = sizeof(buf), state = 0, proto = 0;

	fake.data = reader_ms;
	fake.len = sizeof(reader_ms);
	cr_assert_eq(SCardStatus(0xCAFE, name, &name_len, &state, &proto, buf, &atr_len),
		     SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardStatus, SCARD_S_SUCCESS);
	cr_expect_str_eq(got.call.reader, "Reader 00 00");
	cr_expect_eq(got.call.state, SCARD_SPECIFIC);
	cr_expect_eq(got.call.active_protocol, SCARD_PROTOCOL_T1);
	cr_expect_eq(got.call.out.len, sizeof(atr));
	cr_expect_arr_eq(got.call.out.data, atr, sizeof(atr));
	expect_word("pcchReaderLen=64");
	expect_word("pcbAtrLen=33");
}

Test(encode, status_autoallocate_name)
{
	char *name = NULL;
	DWORD name_len = SCARD_AUTOALLOCATE, atr_len = 0;

	fake.data = reader_ms;
	fake.len = sizeof(reader_ms);
	/* pbAtr NULL with a length: a size query for the ATR. */
	cr_assert_eq(SCardStatus(0xCAFE, (LPSTR)&name, &name_len, NULL, NULL, NULL, &atr_len),
		     SCARD_S_SUCCESS);
	cr_assert_eq(name, (char *)autoalloc);
	expect_word("pcchReaderLen=auto");
	cr_expect_str_eq(got.call.reader, "Reader 00 00");
	expect_word("pdwState=NULL");
	expect_word("pdwProtocol=NULL");
	expect_word("pbAtr=NULL");
	expect_word("pcbAtrLen_out=5");
	cr_expect_null(got.call.out.data);
	cr_expect(!(got.call.present & TRACE_HAS_STATE));
}

Test(encode, status_short_buffer_and_null_lengths)
{
	char name[4];
	DWORD name_len = sizeof(name);

	fake.rv = SCARD_E_INSUFFICIENT_BUFFER;
	fake.len = sizeof(reader_ms);
	cr_assert_eq(SCardStatus(0xCAFE, name, &name_len, NULL, NULL, NULL, NULL),
		     SCARD_E_INSUFFICIENT_BUFFER);
	expect_recorded(TRACE_FN_SCardStatus, SCARD_E_INSUFFICIENT_BUFFER);
	expect_word("pcchReaderLen=4");
	expect_word("pcchReaderLen_out=14");
	expect_word("pcbAtrLen=NULL");
	cr_expect_null(got.call.reader);
	cr_expect_null(got.call.out.data);

	/* Every pointer NULL: the words fit and stay a terminated string. */
	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_E_INVALID_PARAMETER;
	SCardStatus(0xCAFE, NULL, NULL, NULL, NULL, NULL, NULL);
	expect_word("mszReaderName=NULL");
	expect_word("pcchReaderLen=NULL");
	expect_word("pcbAtrLen=NULL");
	cr_expect_lt(strlen(extra()), sizeof(((struct shim_call *)0)->extra));
}

Test(encode, status_name_not_terminated)
{
	char name[8];
	DWORD name_len = sizeof(name);
	static const char unterminated[8] = "ABCDEFGH";

	/* A broken library returning no NUL: the reader column stays empty. */
	fake.data = unterminated;
	fake.len = sizeof(unterminated);
	cr_assert_eq(SCardStatus(0xCAFE, name, &name_len, NULL, NULL, NULL, NULL), SCARD_S_SUCCESS);
	cr_expect_null(got.call.reader);
}

Test(encode, get_status_change)
{
	SCARD_READERSTATE st[2] = {
		{ .szReader = "A", .dwCurrentState = SCARD_STATE_UNAWARE },
		{ .szReader = "B", .dwCurrentState = SCARD_STATE_EMPTY },
	};

	fake.rv = SCARD_E_TIMEOUT;	/* the array is valid after a timeout too */
	cr_assert_eq(SCardGetStatusChange(0x77, 500, st, 2), SCARD_E_TIMEOUT);
	expect_recorded(TRACE_FN_SCardGetStatusChange, SCARD_E_TIMEOUT);
	cr_expect_eq(got.call.timeout, 500);
	expect_word("cReaders=2");
	cr_assert_eq(got.call.n_states, 2);
	cr_expect_str_eq(got.states[1].reader, "B");
	cr_expect_eq(got.states[1].current_state, SCARD_STATE_EMPTY);
	cr_expect_eq(got.states[1].event_state, SCARD_STATE_CHANGED | SCARD_STATE_PRESENT);
	cr_expect_arr_eq(got.states[0].atr.data, atr, sizeof(atr));
}

Test(encode, get_status_change_untrusted_arrays)
{
	SCARD_READERSTATE st[1] = { { .szReader = "A" } };

	/* After other errors the library may not have walked the array. */
	fake.rv = SCARD_E_INVALID_HANDLE;
	SCardGetStatusChange(0x77, 0, st, 1);
	cr_expect_eq(got.call.n_states, 0);

	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_E_INVALID_PARAMETER;
	SCardGetStatusChange(0x77, INFINITE, NULL, 3);
	expect_word("rgReaderStates=NULL");
	expect_word("cReaders=3");
	cr_expect_eq(got.call.n_states, 0);
}

static LONG
fake_GetStatusChange_big_atr(SCARDCONTEXT hContext, DWORD dwTimeout,
			     SCARD_READERSTATE *rgReaderStates, DWORD cReaders)
{
	/* A card is there (only then the library writes an ATR), and
	 * more than rgbAtr holds. */
	rgReaderStates[0].dwEventState = SCARD_STATE_CHANGED | SCARD_STATE_PRESENT;
	rgReaderStates[0].cbAtr = 1000;
	return SCARD_S_SUCCESS;
}

Test(encode, get_status_change_atr_bounded)
{
	SCARD_READERSTATE st[1] = { { .szReader = "A" } };

	shim_real.SCardGetStatusChange = fake_GetStatusChange_big_atr;
	SCardGetStatusChange(0x77, 0, st, 1);
	cr_assert_eq(got.call.n_states, 1);
	cr_expect_eq(got.states[0].atr.len, sizeof(st[0].rgbAtr));
}

Test(encode, control)
{
	static const uint8_t in[] = { 0x01, 0x02 }, answer[] = { 0x12, 0x04, 0x42, 0x00, 0x0D, 0x48 };
	uint8_t out[16];
	DWORD ret = 0;

	fake.data = answer;
	fake.len = sizeof(answer);
	cr_assert_eq(SCardControl(0xCAFE, CM_IOCTL_GET_FEATURE_REQUEST, in, sizeof(in), out,
				  sizeof(out), &ret),
		     SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardControl, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.code, CM_IOCTL_GET_FEATURE_REQUEST);
	cr_expect_eq(got.call.in.len, sizeof(in));
	cr_expect_arr_eq(got.call.in.data, in, sizeof(in));
	cr_expect_eq(got.call.out.len, sizeof(answer));
	cr_expect_arr_eq(got.call.out.data, answer, sizeof(answer));
	expect_word("cbRecvLength=16");
}

Test(encode, control_failure_and_nulls)
{
	uint8_t out[2];
	DWORD ret = 0;

	fake.rv = SCARD_E_INSUFFICIENT_BUFFER;
	fake.len = 6;
	cr_assert_eq(SCardControl(0xCAFE, 0x42000001, NULL, 0, out, sizeof(out), &ret),
		     SCARD_E_INSUFFICIENT_BUFFER);
	expect_word("pbSendBuffer=NULL");
	expect_word("lpBytesReturned_out=6");
	cr_expect_null(got.call.out.data);

	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_S_SUCCESS;
	SCardControl(0xCAFE, 0x42000001, NULL, 0, NULL, 0, NULL);
	expect_word("pbRecvBuffer=NULL");
	expect_word("lpBytesReturned=NULL");
	cr_expect_null(got.call.out.data);
}

Test(encode, control_oversized_input_not_read)
{
	uint8_t tiny[1] = { 0 };

	/* pcsc-lite rejects it without reading it: so must the shim. */
	fake.rv = SCARD_E_INSUFFICIENT_BUFFER;
	SCardControl(0xCAFE, 0x42000001, tiny, MAX_BUFFER_SIZE_EXTENDED + 1, NULL, 0, NULL);
	cr_expect_null(got.call.in.data);
	cr_expect_eq(got.call.in.len, 0);
	expect_oversized("cbSendLength");
}

static const uint8_t select_cmd[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 }, ok_sw[] = { 0x90, 0x00 };

Test(encode, transmit)
{
	SCARD_IO_REQUEST recv_pci = { SCARD_PROTOCOL_UNDEFINED, sizeof(recv_pci) };
	uint8_t resp[258];
	DWORD len = sizeof(resp);

	fake.data = ok_sw;
	fake.len = sizeof(ok_sw);
	cr_assert_eq(SCardTransmit(0xCAFE, SCARD_PCI_T1, select_cmd, sizeof(select_cmd), &recv_pci,
				   resp, &len),
		     SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardTransmit, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.send_pci, SCARD_PROTOCOL_T1);
	cr_expect(got.call.present & TRACE_HAS_RECV_PCI);
	cr_expect_eq(got.call.recv_pci, SCARD_PROTOCOL_T1);
	cr_expect_arr_eq(got.call.in.data, select_cmd, sizeof(select_cmd));
	cr_expect_eq(got.call.out.len, 2);
	cr_expect_arr_eq(got.call.out.data, ok_sw, sizeof(ok_sw));
	expect_word("pcbRecvLength=258");
	cr_expect_eq(got.call.redacted, 0);
}

Test(encode, transmit_nulls_and_short_buffer)
{
	uint8_t resp[1];
	DWORD len = sizeof(resp);

	fake.rv = SCARD_E_INSUFFICIENT_BUFFER;
	fake.len = 2;
	cr_assert_eq(SCardTransmit(0xCAFE, NULL, select_cmd, sizeof(select_cmd), NULL, resp, &len),
		     SCARD_E_INSUFFICIENT_BUFFER);
	expect_word("pioSendPci=NULL");
	expect_word("pioRecvPci=NULL");
	expect_word("pcbRecvLength=1");
	expect_word("pcbRecvLength_out=2");
	cr_expect(!(got.call.present & TRACE_HAS_SEND_PCI));
	cr_expect(!(got.call.present & TRACE_HAS_RECV_PCI));
	cr_expect_null(got.call.out.data);

	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_E_INVALID_PARAMETER;
	SCardTransmit(0xCAFE, SCARD_PCI_T0, NULL, 0, NULL, NULL, NULL);
	expect_word("pbSendBuffer=NULL");
	expect_word("pbRecvBuffer=NULL");
	expect_word("pcbRecvLength=NULL");
	cr_expect_null(got.call.in.data);
}

Test(encode, transmit_verify_redacted)
{
	static const uint8_t verify[] = { 0x00, 0x20, 0x00, 0x81, 0x04, '1', '2', '3', '4' };
	static const uint8_t redacted[] = { 0x00, 0x20, 0x00, 0x81, 0x04, 0xFF, 0xFF, 0xFF, 0xFF };
	uint8_t resp[2];
	DWORD len = sizeof(resp);

	fake.data = ok_sw;
	fake.len = sizeof(ok_sw);
	cr_assert_eq(SCardTransmit(0xCAFE, SCARD_PCI_T1, verify, sizeof(verify), NULL, resp, &len),
		     SCARD_S_SUCCESS);
	cr_expect_eq(got.call.redacted, 1);
	cr_expect_eq(got.call.in.len, sizeof(redacted));
	cr_expect_arr_eq(got.call.in.data, redacted, sizeof(redacted));
}

Test(encode, transmit_oversized_command_not_read)
{
	uint8_t tiny[5] = { 0 }, resp[2];
	DWORD len = sizeof(resp);

	fake.rv = SCARD_E_INSUFFICIENT_BUFFER;
	SCardTransmit(0xCAFE, SCARD_PCI_T1, tiny, MAX_BUFFER_SIZE_EXTENDED + 1, NULL, resp, &len);
	cr_expect_null(got.call.in.data);
	expect_oversized("cbSendLength");
}

static const char groups_ms[] = "SCard$DefaultReaders\0";
static const char readers_ms[] = "A 00 00\0B 00 00\0";

Test(encode, list_reader_groups)
{
	char buf[64];
	char *alloc = NULL;
	DWORD len = sizeof(buf);

	fake.data = groups_ms;
	fake.len = sizeof(groups_ms);
	cr_assert_eq(SCardListReaderGroups(0x77, buf, &len), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardListReaderGroups, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.context, 0x77);
	cr_expect_eq(got.call.out.len, sizeof(groups_ms));
	cr_expect_arr_eq(got.call.out.data, groups_ms, sizeof(groups_ms));
	expect_word("pcchGroups=64");

	memset(&got, 0, sizeof(got));
	len = SCARD_AUTOALLOCATE;
	cr_assert_eq(SCardListReaderGroups(0x77, (LPSTR)&alloc, &len), SCARD_S_SUCCESS);
	expect_word("pcchGroups=auto");
	cr_expect_arr_eq(got.call.out.data, groups_ms, sizeof(groups_ms));
}

Test(encode, list_readers)
{
	char buf[64];
	DWORD len = sizeof(buf);

	fake.data = readers_ms;
	fake.len = sizeof(readers_ms);
	cr_assert_eq(SCardListReaders(0x77, groups_ms, buf, &len), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardListReaders, SCARD_S_SUCCESS);
	/* pcsc-lite ignores mszGroups: the shim does not read it either. */
	cr_expect_null(got.call.in.data);
	cr_expect_eq(got.call.out.len, sizeof(readers_ms));
	cr_expect_arr_eq(got.call.out.data, readers_ms, sizeof(readers_ms));
}

Test(encode, list_readers_size_query_and_autoallocate)
{
	char *alloc = NULL;
	DWORD len = 0;

	fake.data = readers_ms;
	fake.len = sizeof(readers_ms);
	/* The usual two-step: ask the size, then allocate. */
	cr_assert_eq(SCardListReaders(0x77, NULL, NULL, &len), SCARD_S_SUCCESS);
	cr_expect_eq(len, sizeof(readers_ms));
	expect_word("mszReaders=NULL");
	expect_word("pcchReaders=0");
	expect_word("pcchReaders_out=17");
	cr_expect_null(got.call.in.data);
	cr_expect_null(got.call.out.data);

	memset(&got, 0, sizeof(got));
	len = SCARD_AUTOALLOCATE;
	cr_assert_eq(SCardListReaders(0x77, NULL, (LPSTR)&alloc, &len), SCARD_S_SUCCESS);
	cr_assert_eq(alloc, (char *)autoalloc);
	expect_word("pcchReaders=auto");
	cr_expect_eq(got.call.out.len, sizeof(readers_ms));
	cr_expect_arr_eq(got.call.out.data, readers_ms, sizeof(readers_ms));

	memset(&got, 0, sizeof(got));
	cr_assert_eq(SCardListReaders(0x77, NULL, NULL, NULL), SCARD_E_INVALID_PARAMETER);
	expect_word("pcchReaders=NULL");
	expect_no_word("pcchReaders_out=17");
}

Test(encode, free_memory)
{
	cr_assert_eq(SCardFreeMemory(0x77, autoalloc), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardFreeMemory, SCARD_S_SUCCESS);
	cr_expect(got.call.present & TRACE_HAS_CODE);
	cr_expect_eq(got.call.code, (int64_t)(uintptr_t)autoalloc);
}

Test(encode, get_attrib)
{
	static const uint8_t vendor[] = "pcsctap";
	uint8_t buf[32];
	uint8_t *alloc = NULL;
	DWORD len = sizeof(buf);

	fake.data = vendor;
	fake.len = sizeof(vendor);
	cr_assert_eq(SCardGetAttrib(0xCAFE, SCARD_ATTR_VENDOR_NAME, buf, &len), SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardGetAttrib, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.code, SCARD_ATTR_VENDOR_NAME);
	cr_expect_arr_eq(got.call.out.data, vendor, sizeof(vendor));
	expect_word("pcbAttrLen=32");

	memset(&got, 0, sizeof(got));
	len = SCARD_AUTOALLOCATE;
	cr_assert_eq(SCardGetAttrib(0xCAFE, SCARD_ATTR_VENDOR_NAME, (LPBYTE)&alloc, &len),
		     SCARD_S_SUCCESS);
	expect_word("pcbAttrLen=auto");
	cr_expect_arr_eq(got.call.out.data, vendor, sizeof(vendor));

	memset(&got, 0, sizeof(got));
	len = 0;
	cr_assert_eq(SCardGetAttrib(0xCAFE, SCARD_ATTR_VENDOR_NAME, NULL, &len), SCARD_S_SUCCESS);
	expect_word("pbAttr=NULL");
	expect_word("pcbAttrLen_out=8");
	cr_expect_null(got.call.out.data);
}

Test(encode, set_attrib)
{
	static const uint8_t value[] = { 1, 2, 3 };
	uint8_t tiny[1] = { 0 };

	cr_assert_eq(SCardSetAttrib(0xCAFE, SCARD_ATTR_DEVICE_FRIENDLY_NAME, value, sizeof(value)),
		     SCARD_S_SUCCESS);
	expect_recorded(TRACE_FN_SCardSetAttrib, SCARD_S_SUCCESS);
	cr_expect_eq(got.call.code, SCARD_ATTR_DEVICE_FRIENDLY_NAME);
	cr_expect_arr_eq(got.call.in.data, value, sizeof(value));

	memset(&got, 0, sizeof(got));
	fake.rv = SCARD_E_INVALID_PARAMETER;
	SCardSetAttrib(0xCAFE, 1, tiny, MAX_BUFFER_SIZE_EXTENDED + 1);
	cr_expect_null(got.call.in.data);
	expect_oversized("cbAttrLen");

	memset(&got, 0, sizeof(got));
	SCardSetAttrib(0xCAFE, 1, NULL, 0);
	expect_word("pbAttr=NULL");
}

/* ---- what the caller sees ---------------------------------------------------- */

Test(encode, errno_and_return_code_pass_through)
{
	SCARDCONTEXT ctx;

	fake.rv = SCARD_E_NO_SERVICE;
	fake.errno_set = ECONNREFUSED;
	errno = EINTR;
	cr_assert_eq(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx), SCARD_E_NO_SERVICE);
	cr_expect_eq(errno, ECONNREFUSED, "errno after the call: %d", errno);
	cr_expect_eq(fake.errno_seen, EINTR, "errno the real library saw: %d", fake.errno_seen);
}

Test(encode, untraced_forward)
{
	cr_expect_str_eq(pcsc_stringify_error(SCARD_E_TIMEOUT), "fake error text");
	cr_expect_eq(fake.calls, 1);
	cr_expect_eq(got.calls, 0, "pcsc_stringify_error was traced");
}

Test(encode, pci_structures)
{
	cr_expect_eq(g_rgSCardT0Pci.dwProtocol, SCARD_PROTOCOL_T0);
	cr_expect_eq(g_rgSCardT1Pci.dwProtocol, SCARD_PROTOCOL_T1);
	cr_expect_eq(g_rgSCardRawPci.dwProtocol, SCARD_PROTOCOL_RAW);
	cr_expect_eq(g_rgSCardT1Pci.cbPciLength, sizeof(SCARD_IO_REQUEST));
}
