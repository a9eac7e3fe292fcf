/*
 * markers.c — session markers on the application's own card handle.
 *
 * A reader takes markers only if its answer to the PC/SC part 10
 * CM_IOCTL_GET_FEATURE_REQUEST lists MARKER_FEATURE_TAG; the answer is
 * asked after the first successful connect to the reader and cached per
 * process, so plain readers and stock vpcd never see an unknown control
 * code.  A marker is the real SCardControl(handle, code from the feature
 * list, marker body, no output) — on the application's handle, because a
 * second handle would block behind others' transactions and break
 * exclusive connects.
 *
 * Contention.  pcscd refuses SCardControl with SCARD_E_SHARING_VIOLATION
 * while another handle holds a transaction, without waiting.  Such a
 * marker goes to the slot's side channel instead (side.c), which the
 * pcsctap driver serves between two exchanges of the slot; its token comes
 * with the feature list.  A discovery refused the same way asks the side
 * channel (verified against the reader's ATR, not cached).  Where neither
 * answers, the client's markers wait, in order, until a later discovery
 * succeeds — retried before each of its markers, and before its transmits
 * and controls for as long as those would wait for the card anyway; at its
 * disconnect they are given up and counted in the trace (rv).
 *
 * Nothing here changes what the application sees: the wrapper restores
 * errno, no output of the application is touched, and the result of the
 * carrying SCardControl only goes into the trace.  The table lock is
 * never held across a call into the real library or the side channel.
 */
#include "shim.h"
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A reader's answer to feature discovery through SCardControl. */
struct reader_feature {
	char name[MAX_READERNAME];
	DWORD code;		/* 0: no marker feature */
	uint32_t token;		/* side channel token, 0: none */
};

/* A marker waiting for its client's reader to be known. */
struct pending {
	uint8_t event;
	uint32_t seq;
	int64_t t_ns;
	size_t len;
	uint8_t body[MARKER_MAX_BODY];
};

/* Markers of one client that may wait; more are lost (and counted). */
#define PENDING_MAX 16

/* One client (pid + handle) with a marker-capable or not yet known reader. */
struct client {
	SCARDHANDLE card;
	char reader[MAX_READERNAME];
	DWORD code;		/* 0: the reader's features are not known yet */
	uint32_t token;
	uint32_t seq;		/* last sequence number taken */
	DWORD share_mode;
	DWORD preferred;
	DWORD active;
	struct pending *pending;	/* PENDING_MAX slots, while code == 0 */
	size_t n_pending;
	LONG why;		/* why the features are not known */
};

enum features {
	FEATURES_UNKNOWN,	/* asking failed: ask again */
	FEATURES_NONE,		/* no markers for this reader */
	FEATURES_MARKERS,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct reader_feature *readers;
static size_t n_readers, cap_readers;
static struct client *clients;
static size_t n_clients, cap_clients;
/* Clients whose reader is not known yet: the fast path reads it unlocked. */
static unsigned n_unknown;
static bool warned_loss;

void
shim_markers_lock(void)
{
	pthread_mutex_lock(&lock);
}

void
shim_markers_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

void
shim_markers_child(void)
{
	/* Per process: the child asks its own readers and numbers its own clients. */
	for (size_t i = 0; i < n_clients; i++)
		free(clients[i].pending);
	n_readers = 0;
	n_clients = 0;
	n_unknown = 0;
	warned_loss = false;
	pthread_mutex_init(&lock, NULL);
}

/* Grow an array by doubling; false when out of memory. */
static bool
grow(void **array, size_t *cap, size_t n, size_t size)
{
	size_t new_cap = *cap ? *cap * 2 : 8;
	void *p;

	if (n < *cap)
		return true;
	p = realloc(*array, new_cap * size);
	if (!p)
		return false;
	*array = p;
	*cap = new_cap;
	return true;
}

/* Under the lock. */
static struct reader_feature *
find_reader(const char *name)
{
	for (size_t i = 0; i < n_readers; i++)
		if (!strcmp(readers[i].name, name))
			return &readers[i];
	return NULL;
}

/* Under the lock. */
static struct client *
find_client(SCARDHANDLE card)
{
	for (size_t i = 0; i < n_clients; i++)
		if (clients[i].card == card)
			return &clients[i];
	return NULL;
}

static void
copy_name(char *dst, const char *src)
{
	strncpy(dst, src, MAX_READERNAME - 1);
	dst[MAX_READERNAME - 1] = '\0';
}

/* The cached features of @p reader are stale: the next connect asks again. */
static void
forget_reader(const char *name)
{
	struct reader_feature *f;

	pthread_mutex_lock(&lock);
	f = find_reader(name);
	if (f)
		*f = readers[--n_readers];
	pthread_mutex_unlock(&lock);
}

/*
 * Does @p reader hold a card with this ATR right now?  Asked on a context
 * of our own (the application's may be busy in SCardGetStatusChange);
 * SCardGetStatusChange passes no sharing check.
 */
static bool
reader_has_atr(const char *reader, const uint8_t *atr, size_t len)
{
	SCARD_READERSTATE rs = { .szReader = reader, .dwCurrentState = SCARD_STATE_UNAWARE };
	SCARDCONTEXT ctx;
	bool same;

	if (!len || shim_real.SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx))
		return false;
	same = shim_real.SCardGetStatusChange(ctx, 0, &rs, 1) == SCARD_S_SUCCESS &&
	       (rs.dwEventState & SCARD_STATE_PRESENT) && rs.cbAtr == len &&
	       !memcmp(rs.rgbAtr, atr, len);
	shim_real.SCardReleaseContext(ctx);
	return same;
}

/*
 * What @p reader (behind @p card) does with markers: from the cache, else
 * asked with SCardControl (cached), else — refused because another handle
 * holds a transaction — from the reader's side channel (not cached).
 * @param[out] why the refusal, for FEATURES_UNKNOWN
 */
static enum features
discover(SCARDHANDLE card, const char *reader, DWORD *code, uint32_t *token, LONG *why)
{
	struct shim_side_hello hello;
	struct reader_feature *f;
	uint8_t buf[256];
	DWORD len = 0;
	LONG rv;

	pthread_mutex_lock(&lock);
	f = find_reader(reader);
	if (f) {
		*code = f->code;
		*token = f->token;
	}
	pthread_mutex_unlock(&lock);
	if (f)
		return *code ? FEATURES_MARKERS : FEATURES_NONE;
	rv = shim_real.SCardControl(card, CM_IOCTL_GET_FEATURE_REQUEST, NULL, 0, buf, sizeof(buf), &len);
	if (rv == SCARD_S_SUCCESS) {
		if (len > sizeof(buf))
			len = 0;
		*code = feature_find(buf, len, MARKER_FEATURE_TAG);
		*token = *code ? feature_find(buf, len, SIDE_FEATURE_TAG) : 0;
		pthread_mutex_lock(&lock);
		if (!find_reader(reader) && grow((void **)&readers, &cap_readers, n_readers, sizeof(*readers))) {
			f = &readers[n_readers++];
			copy_name(f->name, reader);
			f->code = *code;
			f->token = *token;
		}
		pthread_mutex_unlock(&lock);
		return *code ? FEATURES_MARKERS : FEATURES_NONE;
	}
	/* Any other refusal is the reader's own answer: no markers (asked again next connect). */
	if (rv != SCARD_E_SHARING_VIOLATION)
		return FEATURES_NONE;
	*why = rv;
	if (shim_side_hello(reader, &hello) == 0 && hello.code &&
	    reader_has_atr(reader, hello.atr, hello.atr_len)) {
		*code = hello.code;
		*token = hello.token;
		return FEATURES_MARKERS;
	}
	return FEATURES_UNKNOWN;
}

static void
record(const struct client *cl, const struct pending *p, LONG rv)
{
	struct trace_marker tm;

	/*
	 * Only contention is worth a warning: other failures (pcscd gone, the
	 * card dropped) are the application's own calls' failures too.
	 */
	if (rv == SCARD_E_SHARING_VIOLATION && !warned_loss) {
		warned_loss = true;
		trace_warnf("a session marker for reader '%s' met another client's transaction and "
			    "could not be delivered; the trace's markers table counts every one", cl->reader);
	}
	if (!shim_writer)
		return;
	tm = (struct trace_marker){
		.tid = shim_tid(),
		.t_ns = p->t_ns,
		.wall_ns = trace_wall_ns(),
		.card = (uint64_t)cl->card,
		.reader = cl->reader,
		.event = p->event,
		.seq = p->seq,
		.body = { p->body, p->len },
		.rv = rv,
	};
	trace_write_marker(shim_writer, &tm);
}

/*
 * Send one encoded marker of @p cl: on its handle, or through the side
 * channel when pcscd refused the handle for another's transaction.
 * @retval the delivery result (SCARD_S_SUCCESS: at the card)
 */
static LONG
deliver(const struct client *cl, const struct pending *p)
{
	struct shim_side_hello hello;
	DWORD returned = 0;
	LONG rv;
	int st;

	rv = shim_real.SCardControl(cl->card, cl->code, p->body, (DWORD)p->len, NULL, 0, &returned);
	if (rv != SCARD_E_SHARING_VIOLATION || !cl->token)
		return rv;
	st = shim_side_marker(cl->reader, cl->token, p->body, p->len);
	if (st == SIDE_WRONG_TOKEN) {
		/* pcscd was restarted since the feature list was cached: ask again. */
		forget_reader(cl->reader);
		if (shim_side_hello(cl->reader, &hello) == 0 &&
		    reader_has_atr(cl->reader, hello.atr, hello.atr_len))
			st = shim_side_marker(cl->reader, hello.token, p->body, p->len);
	}
	if (st == SIDE_OK)
		return SCARD_S_SUCCESS;
	return st == SIDE_NO_CARD ? SCARD_E_NOT_TRANSACTED : rv;
}

/* Encode the next marker of the client snapshot @p cl into @p p. */
static void
encode(const struct client *cl, struct pending *p, uint8_t event, bool has_disposition,
       DWORD disposition)
{
	struct marker m = {
		.version = MARKER_VERSION,
		.event = event,
		.pid = (uint32_t)getpid(),
		.handle = (uint32_t)cl->card,
		.seq = cl->seq,
		.share_mode = (uint32_t)cl->share_mode,
		.preferred_protocols = (uint32_t)cl->preferred,
		.active_protocol = (uint32_t)cl->active,
		.disposition = (uint32_t)disposition,
	};
	ssize_t len;

	m.present = MARKER_HAS(MARKER_TAG_PID) | MARKER_HAS(MARKER_TAG_HANDLE) |
		    MARKER_HAS(MARKER_TAG_PROCESS) | MARKER_HAS(MARKER_TAG_SEQ) |
		    MARKER_HAS(MARKER_TAG_TIMESTAMP) | MARKER_HAS(MARKER_TAG_SHARE_MODE) |
		    MARKER_HAS(MARKER_TAG_PREFERRED_PROTOCOLS) |
		    MARKER_HAS(MARKER_TAG_ACTIVE_PROTOCOL);
	if (has_disposition)
		m.present |= MARKER_HAS(MARKER_TAG_DISPOSITION);
	strncpy(m.process, program_invocation_short_name, sizeof(m.process) - 1);
	m.timestamp_ns = (uint64_t)trace_mono_ns();
	len = marker_encode(&m, p->body, sizeof(p->body));
	p->event = event;
	p->seq = cl->seq;
	p->t_ns = (int64_t)m.timestamp_ns;
	p->len = len > 0 ? (size_t)len : 0;
}

/* Under the lock: @p cl leaves the table. */
static void
drop_client(struct client *cl)
{
	if (!cl->code)
		n_unknown--;
	free(cl->pending);
	*cl = clients[--n_clients];
}

/* How often and how long a call that reaches the card looks for a free card. */
#define SETTLE_POLL_MS 5
#define SETTLE_BOUND_MS 1000

/*
 * For a client whose reader is not known yet: ask again and, once it is
 * known, send what waited, in order.  With @p wait (before a transmit or
 * control, which pcsc-lite's client retries every 100 ms until no other
 * handle holds a transaction), keep asking while pcscd refuses for another
 * handle's transaction: the call would wait at least as long, unless the
 * application turned that waiting off (PCSCLITE_NO_BLOCKING).  The lock is
 * not held.
 */
static void
settle(SCARDHANDLE card, bool wait)
{
	const struct timespec poll = { .tv_nsec = SETTLE_POLL_MS * 1000000L };
	int64_t give_up = trace_mono_ns() + (int64_t)SETTLE_BOUND_MS * 1000000;
	struct client snap, *cl;
	struct pending *waiting = NULL;
	size_t n_waiting = 0;
	enum features f;
	DWORD code = 0;
	uint32_t token = 0;
	LONG why = 0;

	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl)
		snap = *cl;
	pthread_mutex_unlock(&lock);
	if (!cl || snap.code)
		return;
	/*
	 * getenv, not secure_getenv: the client library reads it so, and it
	 * can only shorten the wait.
	 */
	if (wait && getenv("PCSCLITE_NO_BLOCKING"))
		wait = false;
	for (;;) {
		f = discover(card, snap.reader, &code, &token, &why);
		if (f != FEATURES_UNKNOWN || !wait || trace_mono_ns() >= give_up)
			break;
		nanosleep(&poll, NULL);
	}
	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl && !cl->code) {
		if (f == FEATURES_UNKNOWN) {
			cl->why = why;
		} else if (f == FEATURES_NONE) {
			drop_client(cl);
		} else {
			cl->code = code;
			cl->token = token;
			waiting = cl->pending;
			n_waiting = cl->n_pending;
			cl->pending = NULL;
			cl->n_pending = 0;
			n_unknown--;
			snap = *cl;
		}
	}
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n_waiting; i++)
		record(&snap, &waiting[i], deliver(&snap, &waiting[i]));
	free(waiting);
}

/*
 * The next marker of @p card's client: sent now, or queued while its
 * reader is not known.  @p params updates share mode, preferred and active
 * protocol (reconnect).
 */
static void
emit(SCARDHANDLE card, uint8_t event, const DWORD *params, bool has_disposition,
     DWORD disposition)
{
	struct client snap, *cl;
	struct pending p;
	bool queued = false, lost = false;

	if (__atomic_load_n(&n_unknown, __ATOMIC_RELAXED))
		settle(card, false);
	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl) {
		if (params) {
			cl->share_mode = params[0];
			cl->preferred = params[1];
			cl->active = params[2];
		}
		cl->seq++;
		snap = *cl;
		encode(&snap, &p, event, has_disposition, disposition);
		if (!cl->code) {
			queued = cl->n_pending < PENDING_MAX && cl->pending;
			if (queued)
				cl->pending[cl->n_pending++] = p;
			else
				lost = true;
		}
	}
	pthread_mutex_unlock(&lock);
	if (!cl || queued)
		return;
	record(&snap, &p, lost ? snap.why : deliver(&snap, &p));
}

void
shim_markers_after_connect(SCARDHANDLE card, const char *reader,
			   DWORD share_mode, DWORD preferred, DWORD active)
{
	struct client fresh = {
		.card = card,
		.share_mode = share_mode,
		.preferred = preferred,
		.active = active,
	};
	struct client *cl;
	enum features f;

	if (!shim_config.markers || !reader)
		return;
	f = discover(card, reader, &fresh.code, &fresh.token, &fresh.why);
	if (f == FEATURES_NONE)
		return;
	copy_name(fresh.reader, reader);
	if (f == FEATURES_UNKNOWN)
		fresh.pending = malloc(PENDING_MAX * sizeof(*fresh.pending));
	pthread_mutex_lock(&lock);
	/* A handle value the library hands out again is a new client. */
	cl = find_client(card);
	if (cl)
		drop_client(cl);
	if (grow((void **)&clients, &cap_clients, n_clients, sizeof(*clients))) {
		cl = &clients[n_clients++];
		*cl = fresh;
		fresh.pending = NULL;
		if (!cl->code)
			n_unknown++;
	}
	pthread_mutex_unlock(&lock);
	free(fresh.pending);
	emit(card, MARKER_CONNECT, NULL, false, 0);
}

void
shim_markers_after_reconnect(SCARDHANDLE card, DWORD share_mode, DWORD preferred,
			     DWORD initialization, DWORD active)
{
	const DWORD params[3] = { share_mode, preferred, active };

	if (shim_config.markers)
		emit(card, MARKER_RECONNECT, params, true, initialization);
}

void
shim_markers_after_begin(SCARDHANDLE card)
{
	if (shim_config.markers)
		emit(card, MARKER_BEGIN_TRANSACTION, NULL, false, 0);
}

void
shim_markers_before_end(SCARDHANDLE card, DWORD disposition)
{
	if (shim_config.markers)
		emit(card, MARKER_END_TRANSACTION, NULL, true, disposition);
}

void
shim_markers_before_disconnect(SCARDHANDLE card, DWORD disposition)
{
	struct client snap, *cl;
	struct pending *waiting = NULL;
	size_t n_waiting = 0;

	if (!shim_config.markers)
		return;
	emit(card, MARKER_DISCONNECT, NULL, true, disposition);
	/* Still not known: nothing will ever carry these; count them as lost. */
	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl && !cl->code) {
		snap = *cl;
		waiting = cl->pending;
		n_waiting = cl->n_pending;
		cl->pending = NULL;
		cl->n_pending = 0;
	}
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n_waiting; i++)
		record(&snap, &waiting[i], snap.why);
	free(waiting);
}

void
shim_markers_before_io(SCARDHANDLE card)
{
	if (shim_config.markers && __atomic_load_n(&n_unknown, __ATOMIC_RELAXED))
		settle(card, true);
}

void
shim_markers_forget(SCARDHANDLE card)
{
	struct client *cl;

	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl)
		drop_client(cl);
	pthread_mutex_unlock(&lock);
}
