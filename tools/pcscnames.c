#include "pcscnames.h"

#include <stdio.h>

struct rv_name {
	uint32_t rv;
	const char *name;
};

/* pcsc-lite's pcsclite.h values, which are Windows' (winerror.h). */
static const struct rv_name rv_names[] = {
	{ 0x00000000, "SCARD_S_SUCCESS" },
	{ 0x80100001, "SCARD_F_INTERNAL_ERROR" },
	{ 0x80100002, "SCARD_E_CANCELLED" },
	{ 0x80100003, "SCARD_E_INVALID_HANDLE" },
	{ 0x80100004, "SCARD_E_INVALID_PARAMETER" },
	{ 0x80100005, "SCARD_E_INVALID_TARGET" },
	{ 0x80100006, "SCARD_E_NO_MEMORY" },
	{ 0x80100007, "SCARD_F_WAITED_TOO_LONG" },
	{ 0x80100008, "SCARD_E_INSUFFICIENT_BUFFER" },
	{ 0x80100009, "SCARD_E_UNKNOWN_READER" },
	{ 0x8010000A, "SCARD_E_TIMEOUT" },
	{ 0x8010000B, "SCARD_E_SHARING_VIOLATION" },
	{ 0x8010000C, "SCARD_E_NO_SMARTCARD" },
	{ 0x8010000D, "SCARD_E_UNKNOWN_CARD" },
	{ 0x8010000E, "SCARD_E_CANT_DISPOSE" },
	{ 0x8010000F, "SCARD_E_PROTO_MISMATCH" },
	{ 0x80100010, "SCARD_E_NOT_READY" },
	{ 0x80100011, "SCARD_E_INVALID_VALUE" },
	{ 0x80100012, "SCARD_E_SYSTEM_CANCELLED" },
	{ 0x80100013, "SCARD_F_COMM_ERROR" },
	{ 0x80100014, "SCARD_F_UNKNOWN_ERROR" },
	{ 0x80100015, "SCARD_E_INVALID_ATR" },
	{ 0x80100016, "SCARD_E_NOT_TRANSACTED" },
	{ 0x80100017, "SCARD_E_READER_UNAVAILABLE" },
	{ 0x80100018, "SCARD_P_SHUTDOWN" },
	{ 0x80100019, "SCARD_E_PCI_TOO_SMALL" },
	{ 0x8010001A, "SCARD_E_READER_UNSUPPORTED" },
	{ 0x8010001B, "SCARD_E_DUPLICATE_READER" },
	{ 0x8010001C, "SCARD_E_CARD_UNSUPPORTED" },
	{ 0x8010001D, "SCARD_E_NO_SERVICE" },
	{ 0x8010001E, "SCARD_E_SERVICE_STOPPED" },
	/*
	 * Windows calls 0x8010001F SCARD_E_UNEXPECTED; pcsc-lite returns it
	 * as SCARD_E_UNSUPPORTED_FEATURE (stock vpcd's answer to unknown
	 * control codes), which is what readers of a pcsctap trace look for.
	 */
	{ 0x8010001F, "SCARD_E_UNSUPPORTED_FEATURE" },
	{ 0x80100020, "SCARD_E_ICC_INSTALLATION" },
	{ 0x80100021, "SCARD_E_ICC_CREATEORDER" },
	{ 0x80100022, "SCARD_E_UNSUPPORTED_FEATURE" },
	{ 0x80100023, "SCARD_E_DIR_NOT_FOUND" },
	{ 0x80100024, "SCARD_E_FILE_NOT_FOUND" },
	{ 0x80100025, "SCARD_E_NO_DIR" },
	{ 0x80100026, "SCARD_E_NO_FILE" },
	{ 0x80100027, "SCARD_E_NO_ACCESS" },
	{ 0x80100028, "SCARD_E_WRITE_TOO_MANY" },
	{ 0x80100029, "SCARD_E_BAD_SEEK" },
	{ 0x8010002A, "SCARD_E_INVALID_CHV" },
	{ 0x8010002B, "SCARD_E_UNKNOWN_RES_MNG" },
	{ 0x8010002C, "SCARD_E_NO_SUCH_CERTIFICATE" },
	{ 0x8010002D, "SCARD_E_CERTIFICATE_UNAVAILABLE" },
	{ 0x8010002E, "SCARD_E_NO_READERS_AVAILABLE" },
	{ 0x8010002F, "SCARD_E_COMM_DATA_LOST" },
	{ 0x80100030, "SCARD_E_NO_KEY_CONTAINER" },
	{ 0x80100031, "SCARD_E_SERVER_TOO_BUSY" },
	{ 0x80100065, "SCARD_W_UNSUPPORTED_CARD" },
	{ 0x80100066, "SCARD_W_UNRESPONSIVE_CARD" },
	{ 0x80100067, "SCARD_W_UNPOWERED_CARD" },
	{ 0x80100068, "SCARD_W_RESET_CARD" },
	{ 0x80100069, "SCARD_W_REMOVED_CARD" },
	{ 0x8010006A, "SCARD_W_SECURITY_VIOLATION" },
	{ 0x8010006B, "SCARD_W_WRONG_CHV" },
	{ 0x8010006C, "SCARD_W_CHV_BLOCKED" },
	{ 0x8010006D, "SCARD_W_EOF" },
	{ 0x8010006E, "SCARD_W_CANCELLED_BY_USER" },
	{ 0x8010006F, "SCARD_W_CARD_NOT_AUTHENTICATED" },
};

uint32_t
pcsc_rv_u32(int64_t rv)
{
	return (uint32_t)((uint64_t)rv & 0xFFFFFFFFu);
}

const char *
pcsc_rv_name(int64_t rv)
{
	uint32_t v = pcsc_rv_u32(rv);
	size_t lo = 0, hi = sizeof(rv_names) / sizeof(rv_names[0]);

	/* The table is sorted by value. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (rv_names[mid].rv == v)
			return rv_names[mid].name;
		if (rv_names[mid].rv < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
pcsc_share_name(int64_t share)
{
	switch (share) {
	case 1: return "EXCLUSIVE";
	case 2: return "SHARED";
	case 3: return "DIRECT";
	default: return NULL;
	}
}

const char *
pcsc_disposition_name(int64_t disposition)
{
	switch (disposition) {
	case 0: return "LEAVE";
	case 1: return "RESET";
	case 2: return "UNPOWER";
	case 3: return "EJECT";
	default: return NULL;
	}
}

const char *
pcsc_scope_name(int64_t scope)
{
	switch (scope) {
	case 0: return "USER";
	case 1: return "TERMINAL";
	case 2: return "SYSTEM";
	default: return NULL;
	}
}

struct bit_name {
	uint32_t bit;
	const char *name;
};

static const char *
bits_text(uint32_t v, const struct bit_name *names, size_t n, char *buf, size_t len)
{
	size_t pos = 0;
	uint32_t rest = v;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!(v & names[i].bit))
			continue;
		rest &= ~names[i].bit;
		pos += (size_t)snprintf(buf + (pos < len ? pos : len - 1),
					pos < len ? len - pos : 1, "%s%s",
					pos ? "|" : "", names[i].name);
	}
	if (rest)
		pos += (size_t)snprintf(buf + (pos < len ? pos : len - 1),
					pos < len ? len - pos : 1, "%s0x%x",
					pos ? "|" : "", rest);
	return buf;
}

const char *
pcsc_protocol_text(int64_t protocols, char *buf, size_t len)
{
	static const struct bit_name names[] = {
		{ 0x0001, "T0" },
		{ 0x0002, "T1" },
		{ 0x0004, "RAW" },
		{ 0x0008, "T15" },
	};

	if (protocols == 0) {
		snprintf(buf, len, "UNDEFINED");
		return buf;
	}
	return bits_text((uint32_t)protocols, names, sizeof(names) / sizeof(names[0]), buf, len);
}

const char *
pcsc_state_text(uint32_t state, char *buf, size_t len)
{
	static const struct bit_name names[] = {
		{ 0x0001, "IGNORE" },
		{ 0x0002, "CHANGED" },
		{ 0x0004, "UNKNOWN" },
		{ 0x0008, "UNAVAILABLE" },
		{ 0x0010, "EMPTY" },
		{ 0x0020, "PRESENT" },
		{ 0x0040, "ATRMATCH" },
		{ 0x0080, "EXCLUSIVE" },
		{ 0x0100, "INUSE" },
		{ 0x0200, "MUTE" },
		{ 0x0400, "UNPOWERED" },
	};
	uint32_t count = state >> 16;

	bits_text(state & 0xFFFF, names, sizeof(names) / sizeof(names[0]), buf, len);
	if (count && len) {
		size_t pos = 0;

		while (pos < len && buf[pos])
			pos++;
		snprintf(buf + pos, len - pos, "%scount=%u", pos ? "|" : "", count);
	} else if (len && !buf[0]) {
		snprintf(buf, len, "UNAWARE");
	}
	return buf;
}
