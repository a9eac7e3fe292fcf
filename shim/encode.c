/*
 * encode.c — what each SCard* call records: the hand-written half of the
 * wrappers.  pre_<name>() runs before the real call and sees the inputs
 * (in/out lengths as the application passed them), post_<name>() runs
 * after it and reads the outputs.  Only memory that the real library has
 * itself accepted is read: outputs on success, arrays on the results that
 * prove the library walked them, nothing behind a NULL pointer.
 *
 * docs/trace-schema.md says which field holds what; anything else goes
 * into `extra` as key=value words named after the winscard.h argument:
 * NULL arguments ("pioRecvPci=NULL"), lengths passed in ("pcbRecvLength=258",
 * "pcchReaders=auto" for SCARD_AUTOALLOCATE) and lengths returned without
 * data ("pcchReaders_out=27", size queries and short buffers).
 */
#include "shim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
shim_extra(struct shim_call *c, const char *fmt, ...)
{
	size_t room = sizeof(c->extra) - c->extra_len;
	va_list ap;
	int n;

	if (room < 2)
		return;
	if (c->extra_len)
		c->extra[c->extra_len++] = ' ', room--;
	va_start(ap, fmt);
	n = vsnprintf(c->extra + c->extra_len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		c->extra[c->extra_len] = '\0';
	else
		c->extra_len += (size_t)n < room ? (size_t)n : room - 1;
}

/*
 * "<name><suffix>=<v>", as shim_extra(c, "%s%s=%lu", ...) writes it, without
 * stdio: one is written on every transmit, where vsnprintf cost the
 * application's thread more than the rest of the shim.  What would not
 * fit goes the general (truncating) way.
 */
static void
extra_num(struct shim_call *c, const char *name, const char *suffix, unsigned long v)
{
	size_t nlen = strlen(name), slen = strlen(suffix), dlen = 0;
	char digits[24], *p;

	for (unsigned long x = v; dlen == 0 || x; x /= 10)
		digits[sizeof(digits) - ++dlen] = (char)('0' + x % 10);
	if (c->extra_len + 1 + nlen + slen + 1 + dlen >= sizeof(c->extra)) {
		shim_extra(c, "%s%s=%lu", name, suffix, v);
		return;
	}
	p = c->extra + c->extra_len;
	if (c->extra_len)
		*p++ = ' ';
	p = mempcpy(p, name, nlen);
	p = mempcpy(p, suffix, slen);
	*p++ = '=';
	p = mempcpy(p, digits + sizeof(digits) - dlen, dlen);
	*p = '\0';
	c->extra_len = (size_t)(p - c->extra);
}

/* ---- typed helpers ------------------------------------------------------ */

static void
set_context(struct shim_call *c, SCARDCONTEXT h)
{
	c->call.present |= TRACE_HAS_CONTEXT;
	c->call.context = (uint64_t)h;
}

static void
set_card(struct shim_call *c, SCARDHANDLE h)
{
	c->call.present |= TRACE_HAS_CARD;
	c->call.card = (uint64_t)h;
}

/* How Disconnect and EndTransaction leave the card. */
static void
set_disposition(struct shim_call *c, DWORD disposition)
{
	c->call.present |= TRACE_HAS_DISPOSITION;
	c->call.disposition = disposition;
}

/* A control code, attribute id or pointer value (the `code` column). */
static void
set_code(struct shim_call *c, int64_t code)
{
	c->call.present |= TRACE_HAS_CODE;
	c->call.code = code;
}

static void
note_null(struct shim_call *c, const void *p, const char *name)
{
	if (!p)
		shim_extra(c, "%s=NULL", name);
}

/* An in/out length argument as passed in (slot 0 or 1 of c->len_in). */
static void
note_len_in(struct shim_call *c, int slot, const DWORD *p, const char *name)
{
	c->len_null[slot] = p == NULL;
	if (!p) {
		shim_extra(c, "%s=NULL", name);
		return;
	}
	c->len_in[slot] = *p;
	if (*p == SCARD_AUTOALLOCATE)
		shim_extra(c, "%s=auto", name);
	else
		extra_num(c, name, "", (unsigned long)*p);
}

/*
 * An output buffer described by an in/out length: its bytes on success,
 * else (or for a size query) the length the library returned.
 * @retval the bytes, or NULL
 */
static const uint8_t *
out_data(struct shim_call *c, LONG rv, int slot, const void *buf,
	 const DWORD *plen, const char *name, size_t *len)
{
	*len = 0;
	if (!plen)
		return NULL;
	if (rv == SCARD_S_SUCCESS && buf) {
		*len = *plen;
		if (c->len_in[slot] == SCARD_AUTOALLOCATE)
			return *(const uint8_t *const *)buf;
		return buf;
	}
	if (rv == SCARD_S_SUCCESS || rv == SCARD_E_INSUFFICIENT_BUFFER)
		extra_num(c, name, "_out", (unsigned long)*plen);
	return NULL;
}

static void
set_blob(struct trace_blob *b, const void *data, size_t len)
{
	b->data = data;
	b->len = data ? len : 0;
}

/*
 * An input buffer: recorded only within the largest length the real
 * library accepts (it rejects longer ones without reading them, and so
 * must we).
 */
static void
set_in(struct shim_call *c, const void *data, DWORD len, const char *name)
{
	if (len > MAX_BUFFER_SIZE_EXTENDED) {
		extra_num(c, name, "", (unsigned long)len);
		return;
	}
	set_blob(&c->call.in, data, len);
}

/* ---- per function ------------------------------------------------------- */

void
pre_SCardEstablishContext(struct shim_call *c, DWORD dwScope, LPCVOID pvReserved1,
			  LPCVOID pvReserved2, LPSCARDCONTEXT phContext)
{
	c->call.present |= TRACE_HAS_SCOPE;
	c->call.scope = dwScope;
	note_null(c, phContext, "phContext");
}

void
post_SCardEstablishContext(struct shim_call *c, LONG rv, DWORD dwScope, LPCVOID pvReserved1,
			   LPCVOID pvReserved2, LPSCARDCONTEXT phContext)
{
	if (rv == SCARD_S_SUCCESS && phContext)
		set_context(c, *phContext);
}

/*
 * ReleaseContext, IsValidContext and Cancel: the context is all there is
 * to record.
 */
#define CONTEXT_ONLY(name) \
	void \
	pre_##name(struct shim_call *c, SCARDCONTEXT hContext) \
	{ \
		set_context(c, hContext); \
	} \
	void \
	post_##name(struct shim_call *c, LONG rv, SCARDCONTEXT hContext) \
	{ \
	}

CONTEXT_ONLY(SCardReleaseContext)
CONTEXT_ONLY(SCardIsValidContext)
CONTEXT_ONLY(SCardCancel)

void
pre_SCardConnect(struct shim_call *c, SCARDCONTEXT hContext, LPCSTR szReader,
		 DWORD dwShareMode, DWORD dwPreferredProtocols, LPSCARDHANDLE phCard,
		 LPDWORD pdwActiveProtocol)
{
	set_context(c, hContext);
	c->call.reader = szReader;
	c->call.present |= TRACE_HAS_SHARE_MODE | TRACE_HAS_PREFERRED_PROTOCOLS;
	c->call.share_mode = dwShareMode;
	c->call.preferred_protocols = dwPreferredProtocols;
	note_null(c, szReader, "szReader");
	note_null(c, phCard, "phCard");
	note_null(c, pdwActiveProtocol, "pdwActiveProtocol");
}

void
post_SCardConnect(struct shim_call *c, LONG rv, SCARDCONTEXT hContext, LPCSTR szReader,
		  DWORD dwShareMode, DWORD dwPreferredProtocols, LPSCARDHANDLE phCard,
		  LPDWORD pdwActiveProtocol)
{
	DWORD active = SCARD_PROTOCOL_UNDEFINED;

	if (rv != SCARD_S_SUCCESS || !phCard)
		return;
	set_card(c, *phCard);
	if (pdwActiveProtocol) {
		active = *pdwActiveProtocol;
		c->call.present |= TRACE_HAS_ACTIVE_PROTOCOL;
		c->call.active_protocol = active;
	}
	shim_markers_after_connect(*phCard, szReader, dwShareMode, dwPreferredProtocols, active);
}

void
pre_SCardReconnect(struct shim_call *c, SCARDHANDLE hCard, DWORD dwShareMode,
		   DWORD dwPreferredProtocols, DWORD dwInitialization, LPDWORD pdwActiveProtocol)
{
	set_card(c, hCard);
	c->call.present |= TRACE_HAS_SHARE_MODE | TRACE_HAS_PREFERRED_PROTOCOLS | TRACE_HAS_DISPOSITION;
	c->call.share_mode = dwShareMode;
	c->call.preferred_protocols = dwPreferredProtocols;
	c->call.disposition = dwInitialization;
	note_null(c, pdwActiveProtocol, "pdwActiveProtocol");
}

void
post_SCardReconnect(struct shim_call *c, LONG rv, SCARDHANDLE hCard, DWORD dwShareMode,
		    DWORD dwPreferredProtocols, DWORD dwInitialization, LPDWORD pdwActiveProtocol)
{
	DWORD active = SCARD_PROTOCOL_UNDEFINED;

	if (rv != SCARD_S_SUCCESS)
		return;
	if (pdwActiveProtocol) {
		active = *pdwActiveProtocol;
		c->call.present |= TRACE_HAS_ACTIVE_PROTOCOL;
		c->call.active_protocol = active;
	}
	shim_markers_after_reconnect(hCard, dwShareMode, dwPreferredProtocols, dwInitialization, active);
}

void
pre_SCardDisconnect(struct shim_call *c, SCARDHANDLE hCard, DWORD dwDisposition)
{
	set_card(c, hCard);
	set_disposition(c, dwDisposition);
	shim_markers_before_disconnect(hCard, dwDisposition);
}

void
post_SCardDisconnect(struct shim_call *c, LONG rv, SCARDHANDLE hCard, DWORD dwDisposition)
{
	if (rv == SCARD_S_SUCCESS)
		shim_markers_forget(hCard);
}

void
pre_SCardBeginTransaction(struct shim_call *c, SCARDHANDLE hCard)
{
	set_card(c, hCard);
}

void
post_SCardBeginTransaction(struct shim_call *c, LONG rv, SCARDHANDLE hCard)
{
	if (rv == SCARD_S_SUCCESS)
		shim_markers_after_begin(hCard);
}

void
pre_SCardEndTransaction(struct shim_call *c, SCARDHANDLE hCard, DWORD dwDisposition)
{
	set_card(c, hCard);
	set_disposition(c, dwDisposition);
	shim_markers_before_end(hCard, dwDisposition);
}

void
post_SCardEndTransaction(struct shim_call *c, LONG rv, SCARDHANDLE hCard, DWORD dwDisposition)
{
}

void
pre_SCardStatus(struct shim_call *c, SCARDHANDLE hCard, LPSTR mszReaderName,
		LPDWORD pcchReaderLen, LPDWORD pdwState, LPDWORD pdwProtocol, LPBYTE pbAtr,
		LPDWORD pcbAtrLen)
{
	set_card(c, hCard);
	note_null(c, mszReaderName, "mszReaderName");
	note_len_in(c, 0, pcchReaderLen, "pcchReaderLen");
	note_null(c, pdwState, "pdwState");
	note_null(c, pdwProtocol, "pdwProtocol");
	note_null(c, pbAtr, "pbAtr");
	note_len_in(c, 1, pcbAtrLen, "pcbAtrLen");
}

void
post_SCardStatus(struct shim_call *c, LONG rv, SCARDHANDLE hCard, LPSTR mszReaderName,
		 LPDWORD pcchReaderLen, LPDWORD pdwState, LPDWORD pdwProtocol, LPBYTE pbAtr,
		 LPDWORD pcbAtrLen)
{
	const uint8_t *name, *atr;
	size_t name_len, atr_len;

	name = out_data(c, rv, 0, mszReaderName, pcchReaderLen, "pcchReaderLen", &name_len);
	atr = out_data(c, rv, 1, pbAtr, pcbAtrLen, "pcbAtrLen", &atr_len);
	if (rv != SCARD_S_SUCCESS)
		return;
	/* The name is a multi-string of one name: its first string is it. */
	if (name && name_len && memchr(name, '\0', name_len))
		c->call.reader = (const char *)name;
	set_blob(&c->call.out, atr, atr_len);
	if (pdwState) {
		c->call.present |= TRACE_HAS_STATE;
		c->call.state = *pdwState;
	}
	if (pdwProtocol) {
		c->call.present |= TRACE_HAS_ACTIVE_PROTOCOL;
		c->call.active_protocol = *pdwProtocol;
	}
}

void
pre_SCardGetStatusChange(struct shim_call *c, SCARDCONTEXT hContext, DWORD dwTimeout,
			 SCARD_READERSTATE *rgReaderStates, DWORD cReaders)
{
	set_context(c, hContext);
	c->call.present |= TRACE_HAS_TIMEOUT;
	c->call.timeout = dwTimeout;
	note_null(c, rgReaderStates, "rgReaderStates");
	extra_num(c, "cReaders", "", (unsigned long)cReaders);
}

/*
 * Whether the library went through its event loop, which clears every
 * entry's dwEventState and sets it anew: after a timeout or a cancel, and
 * after success unless every entry was SCARD_STATE_IGNORE (it then returns
 * at once, having read no name).  SCARD_E_UNKNOWN_READER comes from a
 * check of the names before that loop, which writes nothing and stops at
 * the first unknown name: the names after it were never read.
 */
static bool
states_written(LONG rv, const SCARD_READERSTATE *states, DWORD n)
{
	if (rv == SCARD_E_TIMEOUT || rv == SCARD_E_CANCELLED)
		return true;
	if (rv != SCARD_S_SUCCESS)
		return false;
	for (DWORD i = 0; i < n; i++)
		if (!(states[i].dwCurrentState & SCARD_STATE_IGNORE))
			return true;
	return false;
}

/*
 * The ATR of an entry, where the library wrote one: it copies cbAtr and
 * rgbAtr only for a reader it knows that holds a card, in the same step
 * that sets SCARD_STATE_PRESENT.  The `\\?PnP?\Notification` entry,
 * unknown readers and ignored entries keep whatever the application left
 * there, often uninitialised memory.
 */
static void
set_atr(struct trace_reader_state *st, const SCARD_READERSTATE *r)
{
	if (!(r->dwEventState & SCARD_STATE_PRESENT))
		return;
	set_blob(&st->atr, r->rgbAtr, r->cbAtr <= sizeof(r->rgbAtr) ? r->cbAtr : sizeof(r->rgbAtr));
}

void
post_SCardGetStatusChange(struct shim_call *c, LONG rv, SCARDCONTEXT hContext, DWORD dwTimeout,
			  SCARD_READERSTATE *rgReaderStates, DWORD cReaders)
{
	struct trace_reader_state *st;

	if (!rgReaderStates || !cReaders || !states_written(rv, rgReaderStates, cReaders))
		return;
	st = calloc(cReaders, sizeof(*st));
	if (!st)
		return;
	for (DWORD i = 0; i < cReaders; i++) {
		const SCARD_READERSTATE *r = &rgReaderStates[i];

		st[i].reader = r->szReader;
		st[i].current_state = (uint32_t)r->dwCurrentState;
		st[i].event_state = (uint32_t)r->dwEventState;
		set_atr(&st[i], r);
	}
	c->call.states = st;
	c->call.n_states = cReaders;
	c->scratch = st;
}

void
pre_SCardControl(struct shim_call *c, SCARDHANDLE hCard, DWORD dwControlCode,
		 LPCVOID pbSendBuffer, DWORD cbSendLength, LPVOID pbRecvBuffer,
		 DWORD cbRecvLength, LPDWORD lpBytesReturned)
{
	set_card(c, hCard);
	shim_markers_before_io(hCard);
	set_code(c, dwControlCode);
	set_in(c, pbSendBuffer, cbSendLength, "cbSendLength");
	note_null(c, pbSendBuffer, "pbSendBuffer");
	note_null(c, pbRecvBuffer, "pbRecvBuffer");
	extra_num(c, "cbRecvLength", "", (unsigned long)cbRecvLength);
	note_null(c, lpBytesReturned, "lpBytesReturned");
}

void
post_SCardControl(struct shim_call *c, LONG rv, SCARDHANDLE hCard, DWORD dwControlCode,
		  LPCVOID pbSendBuffer, DWORD cbSendLength, LPVOID pbRecvBuffer,
		  DWORD cbRecvLength, LPDWORD lpBytesReturned)
{
	if (rv == SCARD_S_SUCCESS && pbRecvBuffer && lpBytesReturned)
		set_blob(&c->call.out, pbRecvBuffer, *lpBytesReturned);
	else if (lpBytesReturned && *lpBytesReturned)
		extra_num(c, "lpBytesReturned", "_out", (unsigned long)*lpBytesReturned);
}

void
pre_SCardTransmit(struct shim_call *c, SCARDHANDLE hCard, const SCARD_IO_REQUEST *pioSendPci,
		  LPCBYTE pbSendBuffer, DWORD cbSendLength, SCARD_IO_REQUEST *pioRecvPci,
		  LPBYTE pbRecvBuffer, LPDWORD pcbRecvLength)
{
	uint8_t *redacted = NULL;
	int pin = 0;

	set_card(c, hCard);
	/* A marker that waits for its reader's features goes before the APDU. */
	shim_markers_before_io(hCard);
	if (pioSendPci) {
		c->call.present |= TRACE_HAS_SEND_PCI;
		c->call.send_pci = pioSendPci->dwProtocol;
	} else {
		shim_extra(c, "pioSendPci=NULL");
	}
	if (pbSendBuffer && shim_config.redact && cbSendLength <= MAX_BUFFER_SIZE_EXTENDED)
		/* The rule is shared with the driver's wire view (trace/redact.c). */
		pin = trace_redact_apdu(pbSendBuffer, cbSendLength, &redacted);
	if (pin == 1) {
		c->scratch = redacted;
		c->call.redacted = 1;
		set_blob(&c->call.in, redacted, cbSendLength);
	} else if (pin < 0) {
		/* No memory for the redacted copy: keep no data rather than the PIN. */
		c->call.redacted = 1;
		shim_extra(c, "pin-data-dropped");
	} else {
		set_in(c, pbSendBuffer, cbSendLength, "cbSendLength");
	}
	note_null(c, pbSendBuffer, "pbSendBuffer");
	note_null(c, pioRecvPci, "pioRecvPci");
	note_null(c, pbRecvBuffer, "pbRecvBuffer");
	note_len_in(c, 0, pcbRecvLength, "pcbRecvLength");
}

void
post_SCardTransmit(struct shim_call *c, LONG rv, SCARDHANDLE hCard, const SCARD_IO_REQUEST *pioSendPci,
		   LPCBYTE pbSendBuffer, DWORD cbSendLength, SCARD_IO_REQUEST *pioRecvPci,
		   LPBYTE pbRecvBuffer, LPDWORD pcbRecvLength)
{
	const uint8_t *resp;
	size_t len;

	resp = out_data(c, rv, 0, pbRecvBuffer, pcbRecvLength, "pcbRecvLength", &len);
	set_blob(&c->call.out, resp, len);
	if (rv == SCARD_S_SUCCESS && pioRecvPci) {
		c->call.present |= TRACE_HAS_RECV_PCI;
		c->call.recv_pci = pioRecvPci->dwProtocol;
	}
}

void
pre_SCardListReaderGroups(struct shim_call *c, SCARDCONTEXT hContext, LPSTR mszGroups,
			  LPDWORD pcchGroups)
{
	set_context(c, hContext);
	note_null(c, mszGroups, "mszGroups");
	note_len_in(c, 0, pcchGroups, "pcchGroups");
}

void
post_SCardListReaderGroups(struct shim_call *c, LONG rv, SCARDCONTEXT hContext, LPSTR mszGroups,
			   LPDWORD pcchGroups)
{
	const uint8_t *groups;
	size_t len;

	groups = out_data(c, rv, 0, mszGroups, pcchGroups, "pcchGroups", &len);
	set_blob(&c->call.out, groups, len);
}

void
pre_SCardListReaders(struct shim_call *c, SCARDCONTEXT hContext, LPCSTR mszGroups,
		     LPSTR mszReaders, LPDWORD pcchReaders)
{
	/*
	 * mszGroups is not read: pcsc-lite ignores it, and applications pass
	 * plain C strings that need not end in a double NUL within mapped
	 * memory.
	 */
	set_context(c, hContext);
	note_null(c, mszReaders, "mszReaders");
	note_len_in(c, 0, pcchReaders, "pcchReaders");
}

void
post_SCardListReaders(struct shim_call *c, LONG rv, SCARDCONTEXT hContext, LPCSTR mszGroups,
		      LPSTR mszReaders, LPDWORD pcchReaders)
{
	const uint8_t *readers;
	size_t len;

	readers = out_data(c, rv, 0, mszReaders, pcchReaders, "pcchReaders", &len);
	set_blob(&c->call.out, readers, len);
}

void
pre_SCardFreeMemory(struct shim_call *c, SCARDCONTEXT hContext, LPCVOID pvMem)
{
	set_context(c, hContext);
	set_code(c, (int64_t)(uintptr_t)pvMem);
}

void
post_SCardFreeMemory(struct shim_call *c, LONG rv, SCARDCONTEXT hContext, LPCVOID pvMem)
{
}

void
pre_SCardGetAttrib(struct shim_call *c, SCARDHANDLE hCard, DWORD dwAttrId, LPBYTE pbAttr,
		   LPDWORD pcbAttrLen)
{
	set_card(c, hCard);
	set_code(c, dwAttrId);
	note_null(c, pbAttr, "pbAttr");
	note_len_in(c, 0, pcbAttrLen, "pcbAttrLen");
}

void
post_SCardGetAttrib(struct shim_call *c, LONG rv, SCARDHANDLE hCard, DWORD dwAttrId, LPBYTE pbAttr,
		    LPDWORD pcbAttrLen)
{
	const uint8_t *value;
	size_t len;

	value = out_data(c, rv, 0, pbAttr, pcbAttrLen, "pcbAttrLen", &len);
	set_blob(&c->call.out, value, len);
}

void
pre_SCardSetAttrib(struct shim_call *c, SCARDHANDLE hCard, DWORD dwAttrId, LPCBYTE pbAttr,
		   DWORD cbAttrLen)
{
	set_card(c, hCard);
	set_code(c, dwAttrId);
	set_in(c, pbAttr, cbAttrLen, "cbAttrLen");
	note_null(c, pbAttr, "pbAttr");
}

void
post_SCardSetAttrib(struct shim_call *c, LONG rv, SCARDHANDLE hCard, DWORD dwAttrId, LPCBYTE pbAttr,
		    DWORD cbAttrLen)
{
}
