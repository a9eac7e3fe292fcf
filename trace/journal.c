/*
 * journal.c — the mapped event journal: files, the ring, and the record
 * format (see journal.h).
 *
 * A record never straddles the end of the ring (a pad record fills the
 * rest); positions are 64-bit logical byte offsets, the ring offset is
 * position % capacity.  Variable fields are a 32-bit length (ABSENT for
 * a NULL pointer) and the bytes; strings keep their NUL so that they
 * can be bound in place.
 */
#include "journal.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ABSENT 0xffffffffu
#define CAPACITY_MAX (1ull << 30)

/* The fixed part of a call record. */
struct jcall {
	int32_t fn;
	int32_t redacted;
	uint32_t present;
	uint32_t n_states;
	int64_t tid, t_enter_ns, t_return_ns, wall_ns, rv;
	uint64_t context, card;
	int64_t share_mode, preferred_protocols, active_protocol, disposition;
	int64_t scope, timeout, code, state, send_pci, recv_pci;
	int64_t shim_ns;
};

struct jstate {
	uint32_t current_state;
	uint32_t event_state;
};

struct jmarker {
	int64_t tid, t_ns, wall_ns, rv;
	uint64_t card;
	int32_t event;
	uint32_t seq;
};

struct jwire {
	int64_t t_ns, t_end_ns, wall_ns;
	int32_t kind;
	int32_t reserved;
};

struct jprocess {
	int64_t ppid, start_wall_ns;
};

/* ---------------------------------------------------------------------- */
/* Encoding (appenders)                                                   */
/* ---------------------------------------------------------------------- */

static size_t
var_size(const void *data, size_t len)
{
	return 4 + (data ? len : 0);
}

static size_t
str_size(const char *s)
{
	return var_size(s, s ? strlen(s) + 1 : 0);
}

static uint8_t *
put_var(uint8_t *p, const void *data, size_t len)
{
	uint32_t n = data ? (uint32_t)len : ABSENT;

	memcpy(p, &n, 4);
	p += 4;
	if (data && len)
		memcpy(p, data, len);
	return p + (data ? len : 0);
}

static uint8_t *
put_str(uint8_t *p, const char *s)
{
	return put_var(p, s, s ? strlen(s) + 1 : 0);
}

static uint8_t *
put_blob(uint8_t *p, struct trace_blob b)
{
	return put_var(p, b.data, b.len);
}

static size_t
rec_size(size_t payload)
{
	return (sizeof(struct journal_rec) + payload + 7) & ~(size_t)7;
}

/*
 * Room for a record of @p len bytes at the head (a pad first when it
 * would cross the end).  Appenders are serialised by the caller, so head
 * is theirs; tail comes from the importer.
 */
static uint8_t *
reserve(struct journal *j, size_t len, int kind, uint64_t *pos)
{
	uint64_t head = __atomic_load_n(&j->hdr->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&j->hdr->tail, __ATOMIC_ACQUIRE);
	uint64_t off = head % j->capacity;
	uint64_t pad = off + len > j->capacity ? j->capacity - off : 0;
	struct journal_rec *r;

	if (len > j->capacity || head + pad + len - tail > j->capacity)
		return NULL;
	if (pad) {
		r = (struct journal_rec *)(j->ring + off);
		r->len = (uint32_t)pad;
		r->kind = JR_PAD;
		r->reserved = 0;
		head += pad;
		off = 0;
	}
	r = (struct journal_rec *)(j->ring + off);
	r->len = (uint32_t)len;
	r->kind = (uint16_t)kind;
	r->reserved = 0;
	*pos = head;
	return (uint8_t *)(r + 1);
}

/* Make the record at @p pos visible: everything written before is. */
static void
publish(struct journal *j, uint64_t pos, size_t len)
{
	__atomic_store_n(&j->hdr->head, pos + len, __ATOMIC_RELEASE);
}

int
journal_append_call(struct journal *j, const struct trace_call *c)
{
	size_t n_states = c->states ? c->n_states : 0;
	size_t payload, len;
	struct jcall f;
	uint64_t pos;
	uint8_t *p;

	payload = sizeof(f) + str_size(c->reader) + str_size(c->extra) +
		  var_size(c->in.data, c->in.len) + var_size(c->out.data, c->out.len);
	for (size_t i = 0; i < n_states; i++)
		payload += sizeof(struct jstate) + str_size(c->states[i].reader) +
			   var_size(c->states[i].atr.data, c->states[i].atr.len);
	len = rec_size(payload);
	p = reserve(j, len, JR_CALL, &pos);
	if (!p)
		return 0;
	f = (struct jcall){
		.fn = c->fn, .redacted = c->redacted ? 1 : 0, .present = c->present,
		.n_states = (uint32_t)n_states, .tid = c->tid, .t_enter_ns = c->t_enter_ns,
		.t_return_ns = c->t_return_ns, .wall_ns = c->wall_ns, .rv = c->rv,
		.context = c->context, .card = c->card, .share_mode = c->share_mode,
		.preferred_protocols = c->preferred_protocols,
		.active_protocol = c->active_protocol, .disposition = c->disposition,
		.scope = c->scope, .timeout = c->timeout, .code = c->code, .state = c->state,
		.send_pci = c->send_pci, .recv_pci = c->recv_pci, .shim_ns = c->shim_ns,
	};
	memcpy(p, &f, sizeof(f));
	p += sizeof(f);
	p = put_str(p, c->reader);
	p = put_str(p, c->extra);
	p = put_blob(p, c->in);
	p = put_blob(p, c->out);
	for (size_t i = 0; i < n_states; i++) {
		struct jstate s = { c->states[i].current_state, c->states[i].event_state };

		memcpy(p, &s, sizeof(s));
		p = put_str(p + sizeof(s), c->states[i].reader);
		p = put_blob(p, c->states[i].atr);
	}
	publish(j, pos, len);
	return 1;
}

int
journal_append_marker(struct journal *j, const struct trace_marker *m)
{
	struct jmarker f = {
		.tid = m->tid, .t_ns = m->t_ns, .wall_ns = m->wall_ns, .rv = m->rv,
		.card = m->card, .event = m->event, .seq = m->seq,
	};
	size_t len = rec_size(sizeof(f) + str_size(m->reader) +
			      var_size(m->body.data, m->body.len));
	uint64_t pos;
	uint8_t *p = reserve(j, len, JR_MARKER, &pos);

	if (!p)
		return 0;
	memcpy(p, &f, sizeof(f));
	p = put_str(p + sizeof(f), m->reader);
	put_blob(p, m->body);
	publish(j, pos, len);
	return 1;
}

int
journal_append_wire(struct journal *j, const struct trace_wire *x)
{
	struct jwire f = {
		.t_ns = x->t_ns, .t_end_ns = x->t_end_ns, .wall_ns = x->wall_ns, .kind = x->kind,
	};
	size_t len = rec_size(sizeof(f) + str_size(x->reader) + str_size(x->detail) +
			      var_size(x->sent.data, x->sent.len) +
			      var_size(x->received.data, x->received.len));
	uint64_t pos;
	uint8_t *p = reserve(j, len, JR_WIRE, &pos);

	if (!p)
		return 0;
	memcpy(p, &f, sizeof(f));
	p = put_str(p + sizeof(f), x->reader);
	p = put_str(p, x->detail);
	p = put_blob(p, x->sent);
	put_blob(p, x->received);
	publish(j, pos, len);
	return 1;
}

int
journal_append_process(struct journal *j, const struct journal_process *pr)
{
	struct jprocess f = { .ppid = pr->ppid, .start_wall_ns = pr->start_wall_ns };
	size_t len = rec_size(sizeof(f) + str_size(pr->exe) + str_size(pr->name) +
			      str_size(pr->argv) + str_size(pr->role) + str_size(pr->host));
	uint64_t pos;
	uint8_t *p = reserve(j, len, JR_PROCESS, &pos);

	if (!p)
		return 0;
	memcpy(p, &f, sizeof(f));
	p = put_str(p + sizeof(f), pr->exe);
	p = put_str(p, pr->name);
	p = put_str(p, pr->argv);
	p = put_str(p, pr->role);
	put_str(p, pr->host);
	publish(j, pos, len);
	return 1;
}

/* ---------------------------------------------------------------------- */
/* Decoding (importers): every length checked                            */
/* ---------------------------------------------------------------------- */

struct cursor {
	const uint8_t *p;
	const uint8_t *end;
	int bad;
};

static void
get_fixed(struct cursor *c, void *out, size_t len)
{
	if (c->bad || (size_t)(c->end - c->p) < len) {
		c->bad = 1;
		memset(out, 0, len);
		return;
	}
	memcpy(out, c->p, len);
	c->p += len;
}

static struct trace_blob
get_blob(struct cursor *c)
{
	struct trace_blob b = { NULL, 0 };
	uint32_t n;

	get_fixed(c, &n, 4);
	if (c->bad || n == ABSENT)
		return b;
	if ((size_t)(c->end - c->p) < n) {
		c->bad = 1;
		return b;
	}
	b.data = c->p;
	b.len = n;
	c->p += n;
	return b;
}

static const char *
get_str(struct cursor *c)
{
	struct trace_blob b = get_blob(c);

	if (!b.data)
		return NULL;
	if (!b.len || b.data[b.len - 1] != '\0') {
		c->bad = 1;
		return NULL;
	}
	return (const char *)b.data;
}

static int
decode_call(struct cursor *c, struct trace_call *call,
	    struct trace_reader_state **states, size_t *cap)
{
	struct jcall f;

	get_fixed(c, &f, sizeof(f));
	if (c->bad)
		return -EBADMSG;
	*call = (struct trace_call){
		.fn = f.fn, .tid = f.tid, .t_enter_ns = f.t_enter_ns,
		.t_return_ns = f.t_return_ns, .wall_ns = f.wall_ns, .rv = f.rv,
		.present = f.present, .context = f.context, .card = f.card,
		.share_mode = f.share_mode, .preferred_protocols = f.preferred_protocols,
		.active_protocol = f.active_protocol, .disposition = f.disposition,
		.scope = f.scope, .timeout = f.timeout, .code = f.code, .state = f.state,
		.send_pci = f.send_pci, .recv_pci = f.recv_pci, .redacted = f.redacted,
		.shim_ns = f.shim_ns,
	};
	call->reader = get_str(c);
	call->extra = get_str(c);
	call->in = get_blob(c);
	call->out = get_blob(c);
	/* Each state takes at least 16 bytes: a count beyond that is damage. */
	if (c->bad || f.n_states > (size_t)(c->end - c->p) / 16)
		return -EBADMSG;
	if (f.n_states > *cap) {
		struct trace_reader_state *s = realloc(*states, f.n_states * sizeof(*s));

		if (!s)
			return -ENOMEM;
		*states = s;
		*cap = f.n_states;
	}
	for (uint32_t i = 0; i < f.n_states; i++) {
		struct jstate s;

		get_fixed(c, &s, sizeof(s));
		(*states)[i].current_state = s.current_state;
		(*states)[i].event_state = s.event_state;
		(*states)[i].reader = get_str(c);
		(*states)[i].atr = get_blob(c);
	}
	call->states = f.n_states ? *states : NULL;
	call->n_states = f.n_states;
	return c->bad ? -EBADMSG : 1;
}

static int
decode_marker(struct cursor *c, struct trace_marker *m)
{
	struct jmarker f;

	get_fixed(c, &f, sizeof(f));
	*m = (struct trace_marker){
		.tid = f.tid, .t_ns = f.t_ns, .wall_ns = f.wall_ns, .card = f.card,
		.event = f.event, .seq = f.seq, .rv = f.rv,
	};
	m->reader = get_str(c);
	m->body = get_blob(c);
	return c->bad ? -EBADMSG : 1;
}

static int
decode_wire(struct cursor *c, struct trace_wire *x)
{
	struct jwire f;

	get_fixed(c, &f, sizeof(f));
	*x = (struct trace_wire){
		.t_ns = f.t_ns, .t_end_ns = f.t_end_ns, .wall_ns = f.wall_ns, .kind = f.kind,
	};
	x->reader = get_str(c);
	x->detail = get_str(c);
	x->sent = get_blob(c);
	x->received = get_blob(c);
	return c->bad ? -EBADMSG : 1;
}

static int
decode_process(struct cursor *c, struct journal_process *pr)
{
	struct jprocess f;

	get_fixed(c, &f, sizeof(f));
	pr->ppid = f.ppid;
	pr->start_wall_ns = f.start_wall_ns;
	pr->exe = get_str(c);
	pr->name = get_str(c);
	pr->argv = get_str(c);
	pr->role = get_str(c);
	pr->host = get_str(c);
	return c->bad ? -EBADMSG : 1;
}

int
journal_decode(const struct journal *j, uint64_t pos, uint64_t head,
	       struct journal_event *ev, uint64_t *next,
	       struct trace_reader_state **states, size_t *states_cap)
{
	uint64_t off = pos % j->capacity;
	struct journal_rec r;
	struct cursor c;

	if (pos >= head || head - pos > j->capacity || off + sizeof(r) > j->capacity)
		return -EBADMSG;
	memcpy(&r, j->ring + off, sizeof(r));
	if (r.len < sizeof(r) || r.len % 8 || off + r.len > j->capacity || pos + r.len > head)
		return -EBADMSG;
	*next = pos + r.len;
	c.p = j->ring + off + sizeof(r);
	c.end = j->ring + off + r.len;
	c.bad = 0;
	ev->kind = r.kind;
	switch (r.kind) {
	case JR_PAD:
		/* Only the end of the ring is padded. */
		return off + r.len == j->capacity ? 0 : -EBADMSG;
	case JR_CALL:
		return decode_call(&c, &ev->u.call, states, states_cap);
	case JR_MARKER:
		return decode_marker(&c, &ev->u.marker);
	case JR_WIRE:
		return decode_wire(&c, &ev->u.wire);
	case JR_PROCESS:
		return decode_process(&c, &ev->u.process);
	default:
		return -EBADMSG;
	}
}

/* ---------------------------------------------------------------------- */
/* Files                                                                  */
/* ---------------------------------------------------------------------- */

uint64_t
journal_pidns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static int
map_anonymous(struct journal *j, uint64_t capacity)
{
	void *m;

	j->map_len = JOURNAL_HEADER_SIZE + capacity;
	m = mmap(NULL, j->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	j->hdr = m;
	j->ring = (uint8_t *)m + JOURNAL_HEADER_SIZE;
	j->capacity = capacity;
	j->durable = 0;
	return 0;
}

static void
init_header(struct journal_header *h, uint64_t capacity, uint64_t id)
{
	struct timespec ts;

	memset(h, 0, sizeof(*h));
	memcpy(h->magic, JOURNAL_MAGIC, sizeof(JOURNAL_MAGIC));
	h->version = JOURNAL_VERSION;
	h->header_size = JOURNAL_HEADER_SIZE;
	h->capacity = capacity;
	h->id = id;
	h->pid = getpid();
	h->pidns = journal_pidns();
	clock_gettime(CLOCK_REALTIME, &ts);
	h->created_wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
journal_create(struct journal *j, const char *trace_path, uint64_t capacity)
{
	char proc[64];
	char *dirbuf = NULL;
	uint64_t id = 0;
	void *m = MAP_FAILED;
	int fd = -1;
	int ret = 0;

	memset(j, 0, sizeof(*j));
	capacity = (capacity + 4095) & ~(uint64_t)4095;
	if (capacity < 65536)
		capacity = 65536;
	if (capacity > CAPACITY_MAX)
		capacity = CAPACITY_MAX;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id)) {
		ret = -errno;
		goto out;
	}
	id &= INT64_MAX;	/* an SQLite integer key */
	j->path = malloc(strlen(trace_path) + sizeof(JOURNAL_SUFFIX) + 16);
	dirbuf = strdup(trace_path);
	if (!j->path || !dirbuf) {
		ret = -ENOMEM;
		goto out;
	}
	sprintf(j->path, "%s" JOURNAL_SUFFIX "%016llx", trace_path, (unsigned long long)id);
	/* Unnamed until it is mapped: see journal.h. */
	fd = trace_sys.open(dirname(dirbuf), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	if (trace_sys.fchmod(fd, 0600) < 0) {
		ret = -errno;
		goto out;
	}
	/* Allocated now: a page of a sparse shared mapping that cannot be
	 * allocated later would be SIGBUS in the application. */
	ret = -posix_fallocate(fd, 0, (off_t)(JOURNAL_HEADER_SIZE + capacity));
	if (ret < 0)
		goto out;
	m = mmap(NULL, JOURNAL_HEADER_SIZE + capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	/* Every page written once now, in the writer thread: the appenders
	 * then take no first-write fault (page_mkwrite) on a fresh ring.  A
	 * journal removed before writeback is never written to disk. */
	memset((uint8_t *)m + JOURNAL_HEADER_SIZE, 0, capacity);
	init_header(m, capacity, id);
	/* This thread's own descriptor table (see writer.c): thread-self. */
	snprintf(proc, sizeof(proc), "/proc/thread-self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, j->path, AT_SYMLINK_FOLLOW) < 0) {
		ret = -errno;
		goto out;
	}
	j->hdr = m;
	j->ring = (uint8_t *)m + JOURNAL_HEADER_SIZE;
	j->map_len = JOURNAL_HEADER_SIZE + capacity;
	j->capacity = capacity;
	j->durable = 1;
	m = MAP_FAILED;
out:
	if (m != MAP_FAILED)
		munmap(m, JOURNAL_HEADER_SIZE + capacity);
	if (fd >= 0)
		trace_sys.close(fd);
	free(dirbuf);
	if (ret < 0) {
		free(j->path);
		j->path = NULL;
		if (map_anonymous(j, capacity) < 0)
			ret = -ENOMEM;
		else
			init_header(j->hdr, capacity, id);
	}
	return ret;
}

void
journal_release(struct journal *j, int unlink_file)
{
	if (unlink_file && j->path)
		unlink(j->path);
	if (j->hdr)
		munmap(j->hdr, j->map_len);
	free(j->path);
	memset(j, 0, sizeof(*j));
}

int
journal_open_existing(struct journal *j, const char *path, dev_t *dev, ino_t *ino)
{
	struct journal_header h;
	struct stat st;
	void *m;
	int fd, ret = 0;

	memset(j, 0, sizeof(*j));
	fd = trace_sys.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return errno == ELOOP ? -EPERM : -errno;
	if (trace_sys.fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		ret = -EPERM;
		goto out;
	}
	if (st.st_size < JOURNAL_HEADER_SIZE ||
	    trace_sys.pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, JOURNAL_MAGIC, sizeof(JOURNAL_MAGIC)) != 0) {
		ret = -EBADMSG;
		goto out;
	}
	if (h.version > JOURNAL_VERSION) {
		ret = -EPROTO;
		goto out;
	}
	if (h.header_size != JOURNAL_HEADER_SIZE || h.capacity == 0 || h.capacity % 8 ||
	    h.capacity > CAPACITY_MAX ||
	    (uint64_t)st.st_size != JOURNAL_HEADER_SIZE + h.capacity) {
		ret = -EBADMSG;
		goto out;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	j->hdr = m;
	j->ring = (uint8_t *)m + JOURNAL_HEADER_SIZE;
	j->map_len = (size_t)st.st_size;
	j->capacity = h.capacity;
	j->durable = 1;
	j->path = strdup(path);
	*dev = st.st_dev;
	*ino = st.st_ino;
out:
	trace_sys.close(fd);
	return ret;
}

int
journal_owner_alive(const struct journal_header *hdr, dev_t dev, ino_t ino)
{
	char path[64], *line = NULL;
	unsigned long long map_ino;
	size_t cap = 0;
	uint64_t ns = journal_pidns();
	int alive = 0;
	FILE *f;
	int fd;

	(void)dev;	/* st_dev and the maps' device differ on btrfs: inode only */
	if (!ns || hdr->pidns != ns || hdr->pid <= 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%lld/maps", (long long)hdr->pid);
	fd = trace_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : 1;
	f = fdopen(fd, "r");
	if (!f) {
		trace_sys.close(fd);
		return 1;
	}
	/* "start-end perms offset maj:min inode path": an inode of another
	 * file system that happens to match only errs towards alive. */
	while (!alive && getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%*s %*s %*s %*s %llu", &map_ino) == 1 && map_ino == (unsigned long long)ino)
			alive = 1;
	}
	if (ferror(f))
		alive = 1;
	free(line);
	fclose(f);
	return alive;
}
