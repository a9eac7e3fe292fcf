/*
 * ifd.c — the IFD handler (API v3) entry points of libifdpcsctap.so.
 *
 * Each call maps onto the same vpcd wire messages as stock vpcd's driver
 * (ifd-vpcd.c in vsmartcard), so a card sees identical sequences; the
 * additions are markers (opt-in), the part 10 feature answers, bounded
 * waits and the wire trace.  Slots are found by Lun: pcscd puts the
 * reader number in the upper 16 bits and the slot in the lower.
 */
#include "driver.h"
#include "wire.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ifdhandler.h>
#include <reader.h>

#define IFD_EXPORT __attribute__((visibility("default")))

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *table[DRIVER_READERS][DRIVER_SLOTS];

/*
 * The slot of @p lun, not locked; NULL when there is none.  The table lock
 * is held only to find the slot: pcscd never closes a channel while another
 * call on it runs (its per-slot mutex), and it stops the slot's event
 * thread (presence_wait) before it closes the channel.
 */
static struct slot *
slot_find(DWORD lun)
{
	unsigned long reader = (lun >> 16) & 0xFFFF, index = lun & 0xFFFF;
	struct slot *s;

	if (reader >= DRIVER_READERS || index >= DRIVER_SLOTS)
		return NULL;
	pthread_mutex_lock(&table_lock);
	s = table[reader][index];
	pthread_mutex_unlock(&table_lock);
	return s;
}

/* The slot of @p lun, locked; NULL when there is none. */
static struct slot *
slot_get(DWORD lun)
{
	struct slot *s = slot_find(lun);

	if (s)
		pthread_mutex_lock(&s->lock);
	return s;
}

static void
slot_put(struct slot *s)
{
	pthread_mutex_unlock(&s->lock);
}

static RESPONSECODE
create_channel(DWORD lun, const struct devopts *o)
{
	unsigned long reader = (lun >> 16) & 0xFFFF, index = lun & 0xFFFF;
	struct slot *s;
	RESPONSECODE rc = IFD_COMMUNICATION_ERROR;

	if (reader >= DRIVER_READERS || index >= DRIVER_SLOTS) {
		driver_log(DRIVER_LOG_ERROR, "pcsctap: Lun 0x%lx out of range", (unsigned long)lun);
		return IFD_COMMUNICATION_ERROR;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return IFD_COMMUNICATION_ERROR;
	pthread_mutex_lock(&table_lock);
	if (table[reader][index]) {
		driver_log(DRIVER_LOG_ERROR, "pcsctap: Lun 0x%lx already open", (unsigned long)lun);
		goto out;
	}
	if (slot_open(s, lun, (unsigned)index, o) < 0)
		goto out;
	table[reader][index] = s;
	/*
	 * Markers that meet another client's transaction come this way, and
	 * occupancy from pcscd's own reader state (both log their failures;
	 * the slot works without them).
	 */
	if (o->markers) {
		(void)sidechannel_start(s, SIDE_SOCKET_DIR);
		(void)occupancy_start(s, OCC_PCSCD_SOCKET);
	}
	s = NULL;
	rc = IFD_SUCCESS;
out:
	pthread_mutex_unlock(&table_lock);
	free(s);
	return rc;
}

IFD_EXPORT RESPONSECODE
IFDHCreateChannelByName(DWORD Lun, LPSTR DeviceName)
{
	struct devopts o;
	char err[160];

	if (devopts_parse(&o, DeviceName, err, sizeof(err)) < 0) {
		driver_log(DRIVER_LOG_ERROR, "pcsctap: DEVICENAME '%s': %s", DeviceName, err);
		return IFD_COMMUNICATION_ERROR;
	}
	return create_channel(Lun, &o);
}

IFD_EXPORT RESPONSECODE
IFDHCreateChannel(DWORD Lun, DWORD Channel)
{
	struct devopts o;

	/* vpcd: the channel is the port (no DEVICENAME line in reader.conf). */
	devopts_default(&o);
	if (Channel == 0 || Channel >= 0xFFFF)
		return IFD_COMMUNICATION_ERROR;
	o.port = (unsigned)Channel;
	return create_channel(Lun, &o);
}

IFD_EXPORT RESPONSECODE
IFDHCloseChannel(DWORD Lun)
{
	unsigned long reader = (Lun >> 16) & 0xFFFF, index = Lun & 0xFFFF;
	struct slot *s;

	if (reader >= DRIVER_READERS || index >= DRIVER_SLOTS)
		return IFD_COMMUNICATION_ERROR;
	pthread_mutex_lock(&table_lock);
	s = table[reader][index];
	table[reader][index] = NULL;
	pthread_mutex_unlock(&table_lock);
	if (!s)
		return IFD_COMMUNICATION_ERROR;
	/* The side channel's thread may be in occupancy_before_use(): it goes first. */
	sidechannel_stop(s);
	occupancy_stop(s);
	pthread_mutex_lock(&s->lock);
	pthread_mutex_unlock(&s->lock);
	slot_close(s);
	free(s);
	return IFD_SUCCESS;
}

static RESPONSECODE
put_byte(PDWORD Length, PUCHAR Value, UCHAR v)
{
	if (*Length < 1)
		return IFD_ERROR_INSUFFICIENT_BUFFER;
	*Value = v;
	*Length = 1;
	return IFD_SUCCESS;
}

/*
 * pcscd's reader thread calls this instead of sleeping 0.4 s between
 * presence checks.  As the CCID driver's IFDHPolling: IFD_SUCCESS after an
 * event, a timeout or a stop; anything else makes pcscd sleep 0.4 s more.
 */
static RESPONSECODE
wait_for_change(DWORD Lun, int timeout_ms)
{
	struct slot *s = slot_find(Lun);

	if (!s)
		return IFD_COMMUNICATION_ERROR;
	presence_wait(s, timeout_ms);
	return IFD_SUCCESS;
}

/*
 * pcscd's reader removal and shutdown, and its last SCardDisconnect: end
 * the wait under way (or the next), so the reader thread turns its loop.
 */
static RESPONSECODE
stop_waiting(DWORD Lun)
{
	struct slot *s = slot_find(Lun);

	if (!s)
		return IFD_COMMUNICATION_ERROR;
	presence_stop(s);
	/* On the last SCardDisconnect pcscd publishes the reader free next. */
	occupancy_nudge(s);
	return IFD_SUCCESS;
}

/* Hand pcscd one of the functions above (presence=event only). */
static RESPONSECODE
put_function(DWORD Lun, PDWORD Length, PUCHAR Value, const void *fn, size_t size)
{
	struct slot *s = slot_find(Lun);

	if (!s || s->opts.presence_poll) {
		*Length = 0;
		return IFD_ERROR_TAG;
	}
	if (*Length < size)
		return IFD_ERROR_INSUFFICIENT_BUFFER;
	memcpy(Value, fn, size);
	*Length = (DWORD)size;
	return IFD_SUCCESS;
}

IFD_EXPORT RESPONSECODE
IFDHGetCapabilities(DWORD Lun, DWORD Tag, PDWORD Length, PUCHAR Value)
{
	static const char vendor[] = "pcsctap";
	RESPONSECODE rc = IFD_COMMUNICATION_ERROR;
	struct slot *s = NULL;
	ssize_t n;

	if (!Length || !Value)
		return IFD_COMMUNICATION_ERROR;
	switch (Tag) {
	case TAG_IFD_SLOTS_NUMBER:
		return put_byte(Length, Value, DRIVER_SLOTS);
	case TAG_IFD_SIMULTANEOUS_ACCESS:
		/* Several reader.conf entries may use this driver (other ports). */
		return put_byte(Length, Value, DRIVER_READERS);
	case TAG_IFD_THREAD_SAFE:
	case TAG_IFD_SLOT_THREAD_SAFE:
		/*
		 * Every slot has its own lock; the slot table has one too.  So
		 * pcscd gives each slot its own mutex: one slot's waiting never
		 * holds up the other.
		 */
		return put_byte(Length, Value, 1);
	case TAG_IFD_POLLING_THREAD_WITH_TIMEOUT: {
		RESPONSECODE (*fn)(DWORD, int) = wait_for_change;

		return put_function(Lun, Length, Value, &fn, sizeof(fn));
	}
	case TAG_IFD_STOP_POLLING_THREAD: {
		/*
		 * Not TAG_IFD_POLLING_THREAD_KILLABLE: a cancelled thread could
		 * die holding the slot's lock.
		 */
		RESPONSECODE (*fn)(DWORD) = stop_waiting;

		return put_function(Lun, Length, Value, &fn, sizeof(fn));
	}
	case SCARD_ATTR_VENDOR_NAME:
		if (*Length < sizeof(vendor))
			return IFD_ERROR_INSUFFICIENT_BUFFER;
		memcpy(Value, vendor, sizeof(vendor));
		*Length = sizeof(vendor);
		return IFD_SUCCESS;
	case SCARD_ATTR_ATR_STRING:
		/*
		 * Debian's vpcd does not know this attribute; answering from
		 * the last ATR keeps the card's message sequence unchanged.
		 */
		s = slot_get(Lun);
		if (!s || s->fd < 0 || !s->atr_len)
			goto out;
		if (*Length < s->atr_len) {
			rc = IFD_ERROR_INSUFFICIENT_BUFFER;
			goto out;
		}
		memcpy(Value, s->atr, s->atr_len);
		*Length = (DWORD)s->atr_len;
		rc = IFD_SUCCESS;
		goto out;
	case TAG_IFD_ATR:
		/* As vpcd: every ATR request asks the card. */
		s = slot_get(Lun);
		if (!s)
			goto out;
		n = slot_get_atr(s, Value, *Length, true);
		if (n <= 0)
			goto out;
		*Length = (DWORD)n;
		rc = IFD_SUCCESS;
		goto out;
	default:
		*Length = 0;
		return IFD_ERROR_TAG;
	}
out:
	if (s)
		slot_put(s);
	if (rc != IFD_SUCCESS)
		*Length = 0;
	return rc;
}

IFD_EXPORT RESPONSECODE
IFDHSetCapabilities(DWORD Lun, DWORD Tag, DWORD Length, PUCHAR Value)
{
	return IFD_NOT_SUPPORTED;
}

IFD_EXPORT RESPONSECODE
IFDHSetProtocolParameters(DWORD Lun, DWORD Protocol, UCHAR Flags, UCHAR PTS1, UCHAR PTS2,
			  UCHAR PTS3)
{
	struct marker m = {
		.event = MARKER_PROTOCOL,
		.present = MARKER_HAS(MARKER_TAG_ACTIVE_PROTOCOL) | MARKER_HAS(MARKER_TAG_TIMESTAMP),
		.active_protocol = (uint32_t)Protocol,
	};
	uint8_t body[MARKER_MAX_BODY];
	struct slot *s = slot_get(Lun);
	ssize_t n;

	if (!s)
		return IFD_COMMUNICATION_ERROR;
	/*
	 * A virtual card accepts any protocol, as with vpcd; with markers on
	 * the card learns which one pcscd chose.  A marker that cannot be
	 * sent must not fail the client's connect.
	 */
	if (s->opts.markers && s->fd >= 0) {
		m.timestamp_ns = (uint64_t)trace_mono_ns();
		n = marker_encode(&m, body, sizeof(body));
		if (n > 0)
			(void)slot_marker(s, body, (size_t)n);
	}
	slot_put(s);
	return IFD_SUCCESS;
}

IFD_EXPORT RESPONSECODE
IFDHPowerICC(DWORD Lun, DWORD Action, PUCHAR Atr, PDWORD AtrLength)
{
	RESPONSECODE rc = IFD_COMMUNICATION_ERROR;
	struct slot *s = slot_get(Lun);
	uint8_t ctrl;
	ssize_t n;

	if (!s)
		goto out;
	switch (Action) {
	case IFD_POWER_DOWN:
		/* As vpcd: no ATR, the length is left alone. */
		rc = slot_control(s, VPCD_CTRL_OFF) < 0 ? IFD_COMMUNICATION_ERROR : IFD_SUCCESS;
		slot_set_powered(s, false);
		slot_put(s);
		return rc;
	case IFD_POWER_UP:
		ctrl = VPCD_CTRL_ON;
		break;
	case IFD_RESET:
		ctrl = VPCD_CTRL_RESET;
		break;
	default:
		rc = IFD_NOT_SUPPORTED;
		goto out;
	}
	if (!Atr || !AtrLength || slot_control(s, ctrl) < 0)
		goto out;
	n = slot_get_atr(s, Atr, *AtrLength, true);
	if (n <= 0)
		goto out;
	*AtrLength = (DWORD)n;
	slot_set_powered(s, true);
	/* A client is connecting (or reconnecting): the watcher polls fast now. */
	occupancy_nudge(s);
	rc = IFD_SUCCESS;
out:
	if (s)
		slot_put(s);
	if (rc != IFD_SUCCESS && AtrLength)
		*AtrLength = 0;
	return rc;
}

IFD_EXPORT RESPONSECODE
IFDHTransmitToICC(DWORD Lun, SCARD_IO_HEADER SendPci, PUCHAR TxBuffer, DWORD TxLength,
		  PUCHAR RxBuffer, PDWORD RxLength, PSCARD_IO_HEADER RecvPci)
{
	RESPONSECODE rc = IFD_COMMUNICATION_ERROR;
	struct slot *s = NULL;
	ssize_t n;

	if (!RxLength || !RecvPci || !TxBuffer || !RxBuffer)
		goto out;
	/* In use is announced before a client's first APDU (before the slot lock). */
	s = slot_find(Lun);
	if (s)
		occupancy_before_use(s);
	s = slot_get(Lun);
	if (!s)
		goto out;
	n = slot_transmit(s, TxBuffer, TxLength, RxBuffer, *RxLength);
	if (n == -ENOBUFS) {
		rc = IFD_ERROR_INSUFFICIENT_BUFFER;
		goto out;
	}
	/*
	 * The card went (or was dropped) during the exchange: pcscd turns
	 * IFD_ICC_NOT_PRESENT into SCARD_E_NO_SMARTCARD and marks the reader
	 * empty at once, as for a card pulled out of a real reader; later
	 * calls on the handle get SCARD_W_REMOVED_CARD.
	 */
	if (n <= 0 && s->fd < 0)
		rc = IFD_ICC_NOT_PRESENT;
	if (n <= 0)
		goto out;
	*RxLength = (DWORD)n;
	RecvPci->Protocol = 1;	/* as vpcd */
	rc = IFD_SUCCESS;
out:
	if (s)
		slot_put(s);
	if (rc != IFD_SUCCESS && RxLength)
		*RxLength = 0;
	return rc;
}

static RESPONSECODE
forward_marker(struct slot *s, const uint8_t *in, DWORD len)
{
	struct marker m;
	int rc;

	if (!s->opts.markers)
		return IFD_ERROR_NOT_SUPPORTED;
	/* Only well-formed bodies reach the card: it may trust what it gets. */
	if (!in || len < 2 || len > MARKER_MAX_BODY || marker_decode(&m, in, len) < 0) {
		driver_log(DRIVER_LOG_ERROR, "pcsctap: malformed marker (%lu bytes) refused",
			   (unsigned long)len);
		return IFD_COMMUNICATION_ERROR;
	}
	rc = slot_marker(s, in, len);
	return rc < 0 ? IFD_COMMUNICATION_ERROR : IFD_SUCCESS;
}

IFD_EXPORT RESPONSECODE
IFDHControl(DWORD Lun, DWORD dwControlCode, PUCHAR TxBuffer, DWORD TxLength, PUCHAR RxBuffer,
	    DWORD RxLength, LPDWORD pdwBytesReturned)
{
	RESPONSECODE rc = IFD_ERROR_NOT_SUPPORTED;
	struct slot *s;
	ssize_t n;

	if (!pdwBytesReturned)
		return IFD_COMMUNICATION_ERROR;
	*pdwBytesReturned = 0;
	s = slot_find(Lun);
	/* A traced client's marker comes after in-use (markers.md section 7);
	 * any other control call shows a client too (a DIRECT one, maybe). */
	if (s && dwControlCode == MARKER_CONTROL_CODE)
		occupancy_before_use(s);
	else if (s)
		occupancy_nudge(s);
	s = slot_get(Lun);
	if (!s)
		return IFD_COMMUNICATION_ERROR;
	switch (dwControlCode) {
	case CM_IOCTL_GET_FEATURE_REQUEST:
		n = features_answer(s->opts.markers, sidechannel_token(s), RxBuffer,
				    RxBuffer ? RxLength : 0);
		break;
	case DRIVER_IOCTL_TLV_PROPERTIES:
		n = features_tlv_properties(RxBuffer, RxBuffer ? RxLength : 0);
		break;
	case MARKER_CONTROL_CODE:
		rc = forward_marker(s, TxBuffer, TxLength);
		goto out;
	default:
		goto out;
	}
	if (n < 0) {
		rc = IFD_ERROR_INSUFFICIENT_BUFFER;
		goto out;
	}
	*pdwBytesReturned = (DWORD)n;
	rc = IFD_SUCCESS;
out:
	slot_put(s);
	return rc;
}

IFD_EXPORT RESPONSECODE
IFDHICCPresence(DWORD Lun)
{
	struct slot *s = slot_get(Lun);
	uint8_t atr[DRIVER_ATR_MAX];
	RESPONSECODE rc = IFD_ICC_NOT_PRESENT;

	if (!s)
		return IFD_COMMUNICATION_ERROR;
	if (s->opts.presence_poll) {
		/* As vpcd: a card is present when it is connected and gives an ATR. */
		if (slot_connect(s) && slot_get_atr(s, atr, sizeof(atr), false) > 0)
			rc = IFD_ICC_PRESENT;
	} else if (slot_alive(s)) {
		/* presence_wait() accepted the card and has its ATR: ask nothing. */
		rc = IFD_ICC_PRESENT;
	}
	/*
	 * A card that dropped and connected again between two polls is a new
	 * card: report it absent once, so that pcscd forgets the old one's
	 * ATR, protocol and power state (stock vpcd misses this).
	 */
	if (rc == IFD_ICC_PRESENT && s->present && s->reported != s->generation)
		rc = IFD_ICC_NOT_PRESENT;
	s->present = rc == IFD_ICC_PRESENT;
	if (s->present)
		s->reported = s->generation;
	slot_put(s);
	return rc;
}
