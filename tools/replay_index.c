/*
 * replay_index.c — the on-disk index of recorded exchanges behind
 * `pcsctap replay` (see replay_index.h for the matching rule).
 *
 * Two unlinked temporary files:
 *   records: a header, then per exchange a struct rec_head, the command
 *            and the response, in recorded order;
 *   table:   open addressing (linear probing, load <= 1/2) over 64-bit
 *            digests; a slot heads the chain of records with that key,
 *            linked through rec_head.next[], and holds the cursor of the
 *            next record to answer with.
 * Each record is under two keys: its command in its context, and its
 * command alone.  Everything goes through pread/pwrite, so the process
 * holds a few buffers whatever the trace size.
 */
#include "replay_index.h"
#include "handles.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORDS_START 16	/* offset 0 means "no record" */
#define APDU_MAX 65535
#define WRITE_BUFFER (64 * 1024)
#define MAX_ATRS 8
#define SCARD_STATE_PRESENT 0x20
#define INS_SELECT 0xA4

enum key_kind {
	KEY_CONTEXT = 0,	/* the command in its context */
	KEY_COMMAND = 1,	/* the command alone */
	N_KEYS,
};

struct rec_head {
	uint64_t key[N_KEYS];
	uint64_t next[N_KEYS];	/* next record with the same key, 0: none */
	int64_t id;		/* the trace row */
	uint32_t cmd_len;
	uint32_t resp_len;
	uint32_t served;
	uint32_t pad;
};

struct slot {
	uint64_t digest;	/* 0: empty */
	uint64_t head;
	uint64_t tail;
	uint64_t cursor;
};

/* The first ATR seen per reader. */
struct atr_seen {
	char reader[256];
	uint8_t atr[33];
	size_t len;
	bool from_status;	/* SCardStatus beats a reader-state ATR */
};

struct replay_index {
	int records_fd;
	int table_fd;
	uint64_t end;		/* after the last record */
	uint64_t mask;		/* slots - 1 */
	bool strict;
	uint64_t strict_pos;
	uint64_t context;	/* the replayed card's context digest */
	struct replay_counts counts;
	uint8_t *buf;		/* one record's command and response */
	uint8_t *wbuf;		/* appending records */
	size_t wlen;
};

/* ---------------------------------------------------------------------- */
/* Digests and contexts                                                   */

static uint64_t
fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* FNV-1a with a finalizer (murmur3's), never 0 (the empty slot). */
static uint64_t
digest(unsigned tag, uint64_t context, const uint8_t *cmd, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ tag;
	uint8_t c[8];

	for (int i = 0; i < 8; i++)
		c[i] = (uint8_t)(context >> (8 * i));
	h = fnv(h, c, sizeof(c));
	h = fnv(h, cmd, len);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

enum { TAG_CONTEXT = 1, TAG_KEY_CONTEXT, TAG_KEY_COMMAND };

/* The keys of @p cmd sent in *@p context, then the context after it. */
static void
keys_and_advance(uint64_t *context, const uint8_t *cmd, size_t len, uint64_t key[N_KEYS])
{
	key[KEY_CONTEXT] = digest(TAG_KEY_CONTEXT, *context, cmd, len);
	key[KEY_COMMAND] = digest(TAG_KEY_COMMAND, 0, cmd, len);
	/* A SELECT starts a new context that holds it. */
	*context = digest(TAG_CONTEXT, cmd[1] == INS_SELECT ? 0 : *context, cmd, len);
}

int
replay_normalize(const uint8_t *cmd, size_t len, uint8_t **out)
{
	int rc = trace_redact_apdu(cmd, len, out);

	if (rc < 0)
		return rc;
	if (rc == 0) {
		*out = malloc(len ? len : 1);
		if (!*out)
			return -ENOMEM;
		memcpy(*out, cmd, len);
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* File I/O                                                               */

static int
io_pread(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

static int
io_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		done += (size_t)r;
	}
	return 0;
}

/* An unlinked file, 0600, never reached through a link. */
static int
temp_file(const char *dir)
{
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd >= 0 ? fd : -errno;
	if ((size_t)snprintf(path, sizeof(path), "%s/pcsctap-replay.XXXXXX", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int
flush_records(struct replay_index *idx)
{
	int rc = io_pwrite(idx->records_fd, idx->wbuf, idx->wlen, idx->end - idx->wlen);

	idx->wlen = 0;
	return rc;
}

static int
append(struct replay_index *idx, const void *data, size_t len)
{
	int rc;

	if (idx->wlen + len > WRITE_BUFFER) {
		rc = flush_records(idx);
		if (rc < 0)
			return rc;
	}
	if (len > WRITE_BUFFER) {
		rc = io_pwrite(idx->records_fd, data, len, idx->end);
		if (rc == 0)
			idx->end += len;
		return rc;
	}
	memcpy(idx->wbuf + idx->wlen, data, len);
	idx->wlen += len;
	idx->end += len;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Building                                                               */

struct build {
	struct replay_index *idx;
	const struct replay_select *sel;
	struct replay_info *info;
	uint64_t context;	/* the recorded card's context */
	struct atr_seen atrs[MAX_ATRS];
	size_t n_atrs;
	char *err;
	size_t errlen;
};

static void
seen_atr(struct build *b, const char *reader, const struct trace_blob *atr, bool from_status)
{
	struct atr_seen *a = NULL;

	if (!atr->data || atr->len < 2 || atr->len > sizeof(a->atr))
		return;
	if (!reader)
		reader = "";
	for (size_t i = 0; i < b->n_atrs; i++) {
		if (!strcmp(b->atrs[i].reader, reader)) {
			if (b->atrs[i].from_status || !from_status)
				return;
			a = &b->atrs[i];
		}
	}
	if (!a) {
		if (b->n_atrs == MAX_ATRS)
			return;
		a = &b->atrs[b->n_atrs++];
	}
	snprintf(a->reader, sizeof(a->reader), "%s", reader);
	memcpy(a->atr, atr->data, atr->len);
	a->len = atr->len;
	a->from_status = from_status;
}

static int
add_exchange(struct build *b, int64_t id, const char *reader,
	     const struct trace_blob *cmd, const struct trace_blob *resp)
{
	struct replay_info *info = b->info;
	struct rec_head head = { .id = id };
	uint8_t *norm = NULL;
	int rc;

	if (!cmd->data || cmd->len < 4 || cmd->len > APDU_MAX || !resp->data || resp->len < 2)
		return 0;
	if (resp->len > VPCD_FRAME_MAX) {
		/* 65536 bytes of data and a status word: no vpcd frame holds it. */
		info->n_too_long++;
		return 0;
	}
	if (reader && !info->reader[0]) {
		snprintf(info->reader, sizeof(info->reader), "%s", reader);
	} else if (reader && strcmp(reader, info->reader) && !b->sel->reader) {
		snprintf(b->err, b->errlen,
			 "the trace has APDUs of more than one reader ('%s', '%s'): choose one with --reader",
			 info->reader, reader);
		return REPLAY_E_READERS;
	}
	rc = replay_normalize(cmd->data, cmd->len, &norm);
	if (rc < 0)
		return rc;
	keys_and_advance(&b->context, norm, cmd->len, head.key);
	head.cmd_len = (uint32_t)cmd->len;
	head.resp_len = (uint32_t)resp->len;
	rc = append(b->idx, &head, sizeof(head));
	if (rc == 0)
		rc = append(b->idx, norm, cmd->len);
	if (rc == 0)
		rc = append(b->idx, resp->data, resp->len);
	free(norm);
	if (rc == 0)
		info->n_exchanges++;
	return rc;
}

/* Does this call reset or power the card (a new context)? */
static bool
call_resets(const struct trace_call *c)
{
	if (c->rv != 0)
		return false;
	switch (c->fn) {
	case TRACE_FN_SCardConnect:
		return true;	/* the card may have been powered for it */
	case TRACE_FN_SCardReconnect:
	case TRACE_FN_SCardDisconnect:
		return (c->present & TRACE_HAS_DISPOSITION) && c->disposition != 0;	/* not LEAVE */
	default:
		return false;
	}
}

static int
read_client_view(struct build *b, struct trace_reader *r, const struct trace_filter *f)
{
	struct tap_handles *handles = tap_handles_new_reader(r);
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	int rc;

	if (!handles)
		return -ENOMEM;
	rc = trace_iter_calls(r, f, &it);
	if (rc < 0)
		goto out;
	while ((rc = trace_iter_call_next(it, &row)) > 0) {
		const struct trace_call *c = &row.call;
		const char *reader;

		rc = tap_handles_feed(handles, 0, &row, &reader);
		if (rc < 0)
			goto out;

		if (call_resets(c))
			b->context = 0;
		if ((c->fn == TRACE_FN_SCardConnect || c->fn == TRACE_FN_SCardReconnect) &&
		    c->rv == 0 && (c->present & TRACE_HAS_ACTIVE_PROTOCOL))
			b->info->protocols |= (uint32_t)c->active_protocol;
		if (c->fn == TRACE_FN_SCardStatus && c->rv == 0)
			seen_atr(b, reader, &c->out, true);
		for (size_t i = 0; c->fn == TRACE_FN_SCardGetStatusChange && i < c->n_states; i++) {
			if (c->states[i].event_state & SCARD_STATE_PRESENT)
				seen_atr(b, c->states[i].reader, &c->states[i].atr, false);
		}
		if (c->fn == TRACE_FN_SCardTransmit && c->rv == 0 &&
		    (!b->sel->reader || (reader && !strcmp(reader, b->sel->reader)))) {
			rc = add_exchange(b, row.id, reader, &c->in, &c->out);
			if (rc < 0)
				goto out;
		}
	}
out:
	if (it)
		trace_iter_end(it);
	tap_handles_free(handles);
	return rc;
}

static int
read_card_view(struct build *b, struct trace_reader *r, const struct trace_filter *f)
{
	struct trace_iter *it = NULL;
	struct trace_wire_row row;
	int rc;

	rc = trace_iter_wire(r, f, &it);
	if (rc < 0)
		return rc;
	while ((rc = trace_iter_wire_next(it, &row)) > 0) {
		const struct trace_wire *w = &row.wire;

		switch (w->kind) {
		case TRACE_WIRE_APDU:
			rc = add_exchange(b, row.id, w->reader, &w->sent, &w->received);
			if (rc < 0)
				goto out;
			break;
		case TRACE_WIRE_POWER_ON:
		case TRACE_WIRE_RESET:
		case TRACE_WIRE_GET_ATR:
			seen_atr(b, w->reader, &w->received, false);
			if (w->kind != TRACE_WIRE_GET_ATR)
				b->context = 0;
			break;
		case TRACE_WIRE_POWER_OFF:
		case TRACE_WIRE_CARD_CONNECTED:
		case TRACE_WIRE_CARD_GONE:
			b->context = 0;
			break;
		default:
			break;
		}
	}
out:
	trace_iter_end(it);
	return rc;
}

/* The session's reader and time span, for the card view. */
static int
find_session(struct trace_reader *r, int64_t id, struct trace_filter *f, char *reader, size_t len)
{
	struct trace_iter *it = NULL;
	struct trace_session s;
	int rc;

	rc = trace_iter_sessions(r, &(struct trace_filter){ 0 }, &it);
	if (rc < 0)
		return rc;
	while ((rc = trace_iter_session_next(it, &s)) > 0) {
		if (s.id != id)
			continue;
		snprintf(reader, len, "%s", s.reader ? s.reader : "");
		f->since_ns = s.start_ns;
		f->until_ns = s.end_ns;
		rc = 1;
		break;
	}
	trace_iter_end(it);
	return rc < 0 ? rc : rc == 1 ? 0 : REPLAY_E_NO_SESSION;
}

static int
read_view(struct build *b, struct trace_reader *r, enum replay_view view)
{
	const struct replay_select *sel = b->sel;
	struct trace_filter f = { .pid = sel->pid, .reader = sel->reader };
	char session_reader[256];
	int rc;

	b->idx->end = RECORDS_START;
	b->idx->wlen = 0;
	b->context = 0;
	b->info->n_exchanges = 0;
	b->info->n_too_long = 0;
	b->info->reader[0] = '\0';
	b->info->protocols = 0;
	b->info->view = view;
	if (view == REPLAY_VIEW_CLIENT) {
		/*
		 * The reader is picked here, from the card handles, in one
		 * pass: the reader's own reader filter costs a query per call.
		 */
		f.reader = NULL;
		f.session = sel->session;
		return read_client_view(b, r, &f);
	}
	if (sel->session) {
		/* The driver does not know sessions: the wire of the session's
		 * reader while it lasted. */
		rc = find_session(r, sel->session, &f, session_reader, sizeof(session_reader));
		if (rc < 0)
			return rc;
		if (sel->reader && strcmp(sel->reader, session_reader))
			return 0;
		f.reader = session_reader;
		f.pid = 0;	/* the driver's pid is pcscd's, not the client's */
	}
	return read_card_view(b, r, &f);
}

static int
index_records(struct replay_index *idx)
{
	uint64_t slots = 16;
	int rc;

	while (slots < 4 * idx->counts.recorded)
		slots *= 2;
	idx->mask = slots - 1;
	if (ftruncate(idx->table_fd, (off_t)(slots * sizeof(struct slot))) < 0)
		return -errno;
	for (uint64_t off = RECORDS_START; off < idx->end;) {
		struct rec_head head;

		rc = io_pread(idx->records_fd, &head, sizeof(head), off);
		if (rc < 0)
			return rc;
		for (int k = 0; k < N_KEYS; k++) {
			uint64_t i = head.key[k] & idx->mask;
			struct slot s;

			for (;; i = (i + 1) & idx->mask) {
				rc = io_pread(idx->table_fd, &s, sizeof(s), i * sizeof(s));
				if (rc < 0)
					return rc;
				if (s.digest == 0 || s.digest == head.key[k])
					break;
			}
			if (s.digest == 0) {
				s = (struct slot){ head.key[k], off, off, off };
			} else {
				rc = io_pwrite(idx->records_fd, &off, sizeof(off),
					       s.tail + offsetof(struct rec_head, next) + k * sizeof(uint64_t));
				if (rc < 0)
					return rc;
				s.tail = off;
			}
			rc = io_pwrite(idx->table_fd, &s, sizeof(s), i * sizeof(s));
			if (rc < 0)
				return rc;
		}
		off += sizeof(head) + head.cmd_len + head.resp_len;
	}
	return 0;
}

int
replay_index_build(struct replay_index **out, struct trace_reader *r,
		   const struct replay_select *sel, struct replay_info *info,
		   char *err, size_t errlen)
{
	struct replay_index *idx = calloc(1, sizeof(*idx));
	struct build b = { .idx = idx, .sel = sel, .info = info, .err = err, .errlen = errlen };
	int rc;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	err[0] = '\0';
	if (!idx)
		return -ENOMEM;
	idx->records_fd = idx->table_fd = -1;
	idx->buf = malloc(APDU_MAX + REPLAY_RESPONSE_MAX);
	idx->wbuf = malloc(WRITE_BUFFER);
	rc = -ENOMEM;
	if (!idx->buf || !idx->wbuf)
		goto out;
	rc = idx->records_fd = temp_file(sel->tmpdir);
	if (rc < 0)
		goto out;
	rc = idx->table_fd = temp_file(sel->tmpdir);
	if (rc < 0)
		goto out;
	if (sel->session && sel->view != REPLAY_VIEW_CARD) {
		char reader[256];
		struct trace_filter f = { 0 };

		rc = find_session(r, sel->session, &f, reader, sizeof(reader));
		if (rc < 0)
			goto out;
	}
	rc = read_view(&b, r, sel->view == REPLAY_VIEW_CARD ? REPLAY_VIEW_CARD : REPLAY_VIEW_CLIENT);
	if (rc == 0 && info->n_exchanges == 0 && sel->view == REPLAY_VIEW_AUTO)
		rc = read_view(&b, r, REPLAY_VIEW_CARD);
	if (rc < 0)
		goto out;
	rc = flush_records(idx);
	if (rc < 0)
		goto out;
	if (info->n_exchanges == 0) {
		rc = REPLAY_E_NO_APDUS;
		goto out;
	}
	idx->counts.recorded = idx->counts.unused = info->n_exchanges;
	rc = index_records(idx);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < b.n_atrs && !info->atr_len; i++) {
		if (!strcmp(b.atrs[i].reader, info->reader) || !info->reader[0]) {
			memcpy(info->atr, b.atrs[i].atr, b.atrs[i].len);
			info->atr_len = b.atrs[i].len;
		}
	}
	idx->strict_pos = RECORDS_START;
	*out = idx;
	idx = NULL;
out:
	if (rc == REPLAY_E_NO_SESSION)
		snprintf(err, errlen, "no session %lld in the trace", (long long)sel->session);
	replay_index_free(idx);
	return rc;
}

void
replay_index_free(struct replay_index *idx)
{
	if (!idx)
		return;
	if (idx->records_fd >= 0)
		close(idx->records_fd);
	if (idx->table_fd >= 0)
		close(idx->table_fd);
	free(idx->buf);
	free(idx->wbuf);
	free(idx);
}

/* ---------------------------------------------------------------------- */
/* Answering                                                              */

void
replay_index_set_strict(struct replay_index *idx, bool strict)
{
	idx->strict = strict;
}

void
replay_index_power(struct replay_index *idx)
{
	idx->context = 0;
}

/* Read the record at @p off into @p head and idx->buf. */
static int
read_record(struct replay_index *idx, uint64_t off, struct rec_head *head)
{
	int rc = io_pread(idx->records_fd, head, sizeof(*head), off);

	if (rc == 0)
		rc = io_pread(idx->records_fd, idx->buf, head->cmd_len + head->resp_len,
			      off + sizeof(*head));
	return rc;
}

/* The record at @p off answers: hand out its response, count it. */
static int
serve_record(struct replay_index *idx, uint64_t off, struct rec_head *head,
	     uint8_t *resp, size_t *resp_len, int64_t *id)
{
	static const uint32_t one = 1;

	memcpy(resp, idx->buf + head->cmd_len, head->resp_len);
	*resp_len = head->resp_len;
	*id = head->id;
	if (head->served)
		return 0;
	idx->counts.unused--;
	return io_pwrite(idx->records_fd, &one, sizeof(one), off + offsetof(struct rec_head, served));
}

/* @retval 1 answered from the chain of @p key, 0 no such key, <0 error */
static int
answer_by_key(struct replay_index *idx, int k, uint64_t key, const uint8_t *cmd, size_t len,
	      uint8_t *resp, size_t *resp_len, int64_t *id)
{
	struct rec_head head;
	struct slot s;
	uint64_t i = key & idx->mask;
	int rc;

	for (;; i = (i + 1) & idx->mask) {
		rc = io_pread(idx->table_fd, &s, sizeof(s), i * sizeof(s));
		if (rc < 0)
			return rc;
		if (s.digest == 0)
			return 0;
		if (s.digest == key)
			break;
	}
	rc = read_record(idx, s.cursor, &head);
	if (rc < 0)
		return rc;
	/* A digest collision is no match. */
	if (head.cmd_len != len || memcmp(idx->buf, cmd, len))
		return 0;
	rc = serve_record(idx, s.cursor, &head, resp, resp_len, id);
	if (rc < 0)
		return rc;
	if (head.next[k]) {
		s.cursor = head.next[k];
		rc = io_pwrite(idx->table_fd, &s, sizeof(s), i * sizeof(s));
		if (rc < 0)
			return rc;
	}
	return 1;
}

static int
answer_in_order(struct replay_index *idx, const uint8_t *cmd, size_t len,
		uint8_t *resp, size_t *resp_len, int64_t *id)
{
	struct rec_head head;
	uint64_t off = idx->strict_pos;
	int rc;

	if (off >= idx->end)
		return REPLAY_UNMATCHED;
	rc = read_record(idx, off, &head);
	if (rc < 0)
		return rc;
	if (head.cmd_len != len || memcmp(idx->buf, cmd, len))
		return REPLAY_UNMATCHED;
	rc = serve_record(idx, off, &head, resp, resp_len, id);
	if (rc < 0)
		return rc;
	idx->strict_pos = off + sizeof(head) + head.cmd_len + head.resp_len;
	return REPLAY_IN_ORDER;
}

int
replay_index_answer(struct replay_index *idx, const uint8_t *cmd, size_t len,
		    uint8_t *resp, size_t *resp_len, int64_t *id)
{
	uint64_t key[N_KEYS];
	uint8_t *norm = NULL;
	int rc;

	if (len < 4 || len > APDU_MAX) {
		rc = REPLAY_UNMATCHED;
		goto out;
	}
	rc = replay_normalize(cmd, len, &norm);
	if (rc < 0)
		return rc;
	if (idx->strict) {
		rc = answer_in_order(idx, norm, len, resp, resp_len, id);
		goto out;
	}
	keys_and_advance(&idx->context, norm, len, key);
	rc = answer_by_key(idx, KEY_CONTEXT, key[KEY_CONTEXT], norm, len, resp, resp_len, id);
	if (rc == 1) {
		rc = REPLAY_IN_CONTEXT;
		goto out;
	}
	if (rc == 0)
		rc = answer_by_key(idx, KEY_COMMAND, key[KEY_COMMAND], norm, len, resp, resp_len, id);
	if (rc == 1)
		rc = REPLAY_OUT_OF_CONTEXT;
out:
	free(norm);
	switch (rc) {
	case REPLAY_UNMATCHED: idx->counts.unmatched++; break;
	case REPLAY_IN_CONTEXT: idx->counts.in_context++; break;
	case REPLAY_OUT_OF_CONTEXT: idx->counts.out_of_context++; break;
	case REPLAY_IN_ORDER: idx->counts.in_order++; break;
	default: break;
	}
	return rc;
}

void
replay_index_counts(const struct replay_index *idx, struct replay_counts *c)
{
	*c = idx->counts;
}

int
replay_index_next(struct replay_index *idx, uint64_t *cursor, struct replay_exchange *ex)
{
	struct rec_head head;
	uint64_t off = *cursor ? *cursor : RECORDS_START;
	int rc;

	if (off >= idx->end)
		return 0;
	rc = read_record(idx, off, &head);
	if (rc < 0)
		return rc;
	ex->id = head.id;
	ex->cmd = idx->buf;
	ex->cmd_len = head.cmd_len;
	ex->resp = idx->buf + head.cmd_len;
	ex->resp_len = head.resp_len;
	*cursor = off + sizeof(head) + head.cmd_len + head.resp_len;
	return 1;
}
