/*
 * markers.c — session markers on the application's own card handle.
 *
 * A reader takes markers only if its answer to the PC/SC part 10
 * CM_IOCTL_GET_FEATURE_REQUEST lists MARKER_FEATURE_TAG; the answer is
 * asked once per reader per process (after the first successful connect
 * to it) and cached, so plain readers and stock vpcd never see an unknown
 * control code.  A marker is the real SCardControl(handle, code from the
 * feature list, marker body, no output) — on the application's handle,
 * because a second handle would block behind others' transactions and
 * break exclusive connects.
 *
 * Nothing here changes what the application sees: the wrapper restores
 * errno, no output of the application is touched, and the result of the
 * carrying SCardControl only goes into the trace.  The table lock is
 * never held across a call into the real library.
 */
#include "shim.h"
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A reader's answer to feature discovery. */
struct reader_feature {
	char name[MAX_READERNAME];
	DWORD code;		/* 0: no marker feature */
};

/* One client (pid + handle) with a marker-capable reader. */
struct client {
	SCARDHANDLE card;
	DWORD code;
	char reader[MAX_READERNAME];
	uint32_t seq;		/* last sequence number sent */
	DWORD share_mode;
	DWORD preferred;
	DWORD active;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct reader_feature *readers;
static size_t n_readers, cap_readers;
static struct client *clients;
static size_t n_clients, cap_clients;

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
	n_readers = 0;
	n_clients = 0;
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

/*
 * Ask the reader behind @p card for its features.
 * @retval 0 answered; *code is the marker control code or 0
 * @retval -EIO the request failed (not cached: asked again next time)
 */
static int
discover(SCARDHANDLE card, DWORD *code)
{
	uint8_t buf[256];
	DWORD len = 0;
	LONG rv;

	*code = 0;
	rv = shim_real.SCardControl(card, CM_IOCTL_GET_FEATURE_REQUEST, NULL, 0,
				    buf, sizeof(buf), &len);
	if (rv != SCARD_S_SUCCESS)
		return -EIO;
	if (len <= sizeof(buf))
		*code = feature_find(buf, len, MARKER_FEATURE_TAG);
	return 0;
}

/* The marker code for @p reader, asking the reader once. */
static DWORD
reader_code(SCARDHANDLE card, const char *reader)
{
	struct reader_feature *f;
	DWORD code;

	pthread_mutex_lock(&lock);
	f = find_reader(reader);
	code = f ? f->code : 0;
	pthread_mutex_unlock(&lock);
	if (f)
		return code;
	if (discover(card, &code) < 0)
		return 0;
	pthread_mutex_lock(&lock);
	if (!find_reader(reader) && grow((void **)&readers, &cap_readers, n_readers, sizeof(*readers))) {
		f = &readers[n_readers++];
		strncpy(f->name, reader, sizeof(f->name) - 1);
		f->name[sizeof(f->name) - 1] = '\0';
		f->code = code;
	}
	pthread_mutex_unlock(&lock);
	return code;
}

/* Build, send and record one marker for the client snapshot @p cl. */
static void
send_marker(const struct client *cl, uint8_t event, bool has_disposition, DWORD disposition)
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
	uint8_t body[MARKER_MAX_BODY];
	struct trace_marker tm;
	DWORD returned = 0;
	ssize_t len;
	LONG rv;

	m.present = MARKER_HAS(MARKER_TAG_PID) | MARKER_HAS(MARKER_TAG_HANDLE) |
		    MARKER_HAS(MARKER_TAG_PROCESS) | MARKER_HAS(MARKER_TAG_SEQ) |
		    MARKER_HAS(MARKER_TAG_TIMESTAMP) | MARKER_HAS(MARKER_TAG_SHARE_MODE) |
		    MARKER_HAS(MARKER_TAG_PREFERRED_PROTOCOLS) |
		    MARKER_HAS(MARKER_TAG_ACTIVE_PROTOCOL);
	if (has_disposition)
		m.present |= MARKER_HAS(MARKER_TAG_DISPOSITION);
	strncpy(m.process, program_invocation_short_name, sizeof(m.process) - 1);
	m.timestamp_ns = (uint64_t)trace_mono_ns();
	len = marker_encode(&m, body, sizeof(body));
	if (len < 0)
		return;
	rv = shim_real.SCardControl(cl->card, cl->code, body, (DWORD)len, NULL, 0, &returned);
	if (!shim_writer)
		return;
	tm = (struct trace_marker){
		.tid = shim_tid(),
		.t_ns = (int64_t)m.timestamp_ns,
		.wall_ns = trace_wall_ns(),
		.card = (uint64_t)cl->card,
		.reader = cl->reader,
		.event = event,
		.seq = m.seq,
		.body = { body, (size_t)len },
		.rv = rv,
	};
	trace_write_marker(shim_writer, &tm);
}

/*
 * Take the next sequence number of @p card's client, optionally updating
 * its connection parameters, and copy it to @p snap.
 * @retval false not a marker client
 */
static bool
next_seq(SCARDHANDLE card, struct client *snap, const DWORD *params)
{
	struct client *cl;

	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl) {
		if (params) {
			cl->share_mode = params[0];
			cl->preferred = params[1];
			cl->active = params[2];
		}
		cl->seq++;
		*snap = *cl;
	}
	pthread_mutex_unlock(&lock);
	return cl != NULL;
}

void
shim_markers_after_connect(SCARDHANDLE card, const char *reader,
			   DWORD share_mode, DWORD preferred, DWORD active)
{
	struct client snap = {
		.card = card,
		.seq = 1,
		.share_mode = share_mode,
		.preferred = preferred,
		.active = active,
	};
	struct client *cl;

	if (!shim_config.markers || !reader)
		return;
	snap.code = reader_code(card, reader);
	if (!snap.code)
		return;
	strncpy(snap.reader, reader, sizeof(snap.reader) - 1);
	pthread_mutex_lock(&lock);
	/* A handle value the library hands out again is a new client. */
	cl = find_client(card);
	if (!cl && grow((void **)&clients, &cap_clients, n_clients, sizeof(*clients)))
		cl = &clients[n_clients++];
	if (cl)
		*cl = snap;
	pthread_mutex_unlock(&lock);
	if (cl)
		send_marker(&snap, MARKER_CONNECT, false, 0);
}

void
shim_markers_after_reconnect(SCARDHANDLE card, DWORD share_mode, DWORD preferred,
			     DWORD initialization, DWORD active)
{
	const DWORD params[3] = { share_mode, preferred, active };
	struct client snap;

	if (shim_config.markers && next_seq(card, &snap, params))
		send_marker(&snap, MARKER_RECONNECT, true, initialization);
}

void
shim_markers_after_begin(SCARDHANDLE card)
{
	struct client snap;

	if (shim_config.markers && next_seq(card, &snap, NULL))
		send_marker(&snap, MARKER_BEGIN_TRANSACTION, false, 0);
}

void
shim_markers_before_end(SCARDHANDLE card, DWORD disposition)
{
	struct client snap;

	if (shim_config.markers && next_seq(card, &snap, NULL))
		send_marker(&snap, MARKER_END_TRANSACTION, true, disposition);
}

void
shim_markers_before_disconnect(SCARDHANDLE card, DWORD disposition)
{
	struct client snap;

	if (shim_config.markers && next_seq(card, &snap, NULL))
		send_marker(&snap, MARKER_DISCONNECT, true, disposition);
}

void
shim_markers_forget(SCARDHANDLE card)
{
	struct client *cl;

	pthread_mutex_lock(&lock);
	cl = find_client(card);
	if (cl)
		*cl = clients[--n_clients];
	pthread_mutex_unlock(&lock);
}
