/*
 * journal.h — a process's crash-durable event journal: a file beside the
 * trace, mapped MAP_SHARED, holding a ring of fixed-format records.
 *
 * The application's threads append records into the mapping (memory
 * only: no system call, no descriptor of theirs); the writer thread
 * imports them into the trace and advances the tail.  What the mapping
 * holds is in the page cache, so it outlives the process however it ends
 * (exit, _exit, abort, signals, SIGKILL, exec); whoever opens the trace
 * next imports the journals of dead processes (recover.c).
 *
 * File name: "<trace>-journal-<16 hex digits of the id>".  The file is
 * created unnamed (O_TMPFILE), preallocated, mapped and only then linked
 * under its name, so a journal that can be seen is always mapped by a
 * live owner or left by a dead one (journal_owner_alive()).
 */
#pragma once

#include "trace.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_MAGIC "PCSTJRN"
#define JOURNAL_VERSION 1
#define JOURNAL_HEADER_SIZE 4096
#define JOURNAL_SUFFIX "-journal-"

/* The first page of a journal.  Every field is written once at creation,
 * except head (appenders, release), tail (the writer, release) and
 * dropped (appenders). */
struct journal_header {
	char magic[8];		/* JOURNAL_MAGIC */
	uint32_t version;	/* JOURNAL_VERSION: a newer one is left alone */
	uint32_t header_size;	/* JOURNAL_HEADER_SIZE */
	uint64_t capacity;	/* bytes of the ring that follows the header */
	uint64_t id;		/* also in the file name and in the journals table */
	int64_t pid;
	uint64_t pidns;		/* inode of /proc/self/ns/pid: liveness is judged only there */
	int64_t created_wall_ns;
	uint8_t pad1[64 - 56];
	uint64_t head;		/* logical end of the records */
	uint64_t dropped;	/* events that did not fit (counted, never silent) */
	uint8_t pad2[64 - 16];
	uint64_t tail;		/* logical start: everything before it is in the trace */
};

/* Record kinds. */
enum journal_kind {
	JR_PAD = 1,		/* filler up to the end of the ring */
	JR_CALL = 2,
	JR_MARKER = 3,
	JR_WIRE = 4,
	JR_PROCESS = 5,
};

/* Every record starts so; len includes it and is a multiple of 8. */
struct journal_rec {
	uint32_t len;
	uint16_t kind;
	uint16_t reserved;
};

/* A process's identity as recorded (the processes row). */
struct journal_process {
	int64_t ppid;
	int64_t start_wall_ns;
	const char *exe;
	const char *name;
	const char *argv;
	const char *role;
	const char *host;
};

/* One decoded record; pointers point into the journal. */
struct journal_event {
	int kind;		/* enum journal_kind */
	union {
		struct trace_call call;
		struct trace_marker marker;
		struct trace_wire wire;
		struct journal_process process;
	} u;
};

/* A mapped journal: the live one of a writer, or one being recovered. */
struct journal {
	struct journal_header *hdr;
	uint8_t *ring;
	size_t map_len;
	uint64_t capacity;
	int durable;		/* a file (0: anonymous memory, lost with the process) */
	char *path;		/* NULL when not durable */
};

/**
 * Create and map the live journal of @p trace_path, and link it under its
 * name.  Called by the writer thread.
 * @param[in] capacity ring bytes (rounded up to pages)
 * @retval 0 a durable journal
 * @retval <0 negative errno: no file could be made; @p j is then an
 *         anonymous ring of the same size (events survive only while the
 *         process lives), unless -ENOMEM, when @p j is empty
 */
int journal_create(struct journal *j, const char *trace_path, uint64_t capacity);

/* Unmap (and free); with @p unlink_file the file is removed first. */
void journal_release(struct journal *j, int unlink_file);

/**
 * Append one event (any thread; the caller serialises appenders).  The
 * record becomes visible to the importer with head's release store.
 * @retval 1 appended, 0 no room (the caller counts a drop)
 */
int journal_append_call(struct journal *j, const struct trace_call *c);
int journal_append_marker(struct journal *j, const struct trace_marker *m);
int journal_append_wire(struct journal *j, const struct trace_wire *x);
int journal_append_process(struct journal *j, const struct journal_process *p);

/**
 * Decode the record at logical position @p pos (< @p head), checking
 * every length against the record and the ring.
 * @param[out] next the position after it
 * @param states scratch for the reader states of a call (grown as needed)
 * @retval 1 an event, 0 a pad (skip to *next), <0 -EBADMSG (corrupt) or -ENOMEM
 */
int journal_decode(const struct journal *j, uint64_t pos, uint64_t head,
		   struct journal_event *ev, uint64_t *next,
		   struct trace_reader_state **states, size_t *states_cap);

/**
 * Map an existing journal file for import (recover.c), after checking
 * that it is a regular file owned by us with no group/other access, and
 * its header.
 * @retval 0 mapped
 * @retval -EPROTO a version this pcsctap does not know: left alone
 * @retval -EPERM not ours or accessible to others: left alone
 * @retval -EBADMSG not a journal (damaged header)
 * @retval other negative errno
 */
int journal_open_existing(struct journal *j, const char *path, dev_t *dev, ino_t *ino);

/**
 * Whether the process that owns @p hdr may still be writing it: the
 * owner's /proc/PID/maps maps the file (@p dev, @p ino).  Never wrong in
 * the "alive" direction: anything it cannot tell (another pid namespace,
 * /proc unreadable) counts as alive.
 */
int journal_owner_alive(const struct journal_header *hdr, dev_t dev, ino_t ino);

/* The inode of this process's pid namespace (0 if unknown). */
uint64_t journal_pidns(void);
