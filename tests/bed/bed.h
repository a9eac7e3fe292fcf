/*
 * bed.h — the test bed for Criterion end-to-end tests: an isolated pcscd
 * with a virtual reader and card (tests/bed/stack.sh), and reading what
 * the card received.
 *
 * Environment (set by Meson for e2e tests): BED_STACK, BED_WAIT, PCSCTAP.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct bed {
	char dir[256];		/* the stack's state directory */
	char reader[160];	/* slot 0 reader name */
	char card_log[320];
	int port;
};

/*
 * Whether e2e tests can run here (root, pcscd, the bed's environment).
 * @retval NULL yes
 * @retval a reason otherwise; under CI=true the caller must fail, not skip
 */
const char *bed_unavailable(void);

/**
 * Start a stack; @p options are stack.sh start options (NULL-terminated),
 * e.g. { "--card", "test", NULL }.  Sets PCSCLITE_CSOCK_NAME for this
 * process.  The stack is stopped if the process dies.
 * @retval 0 started
 * @retval -1 failed (a message is on stderr)
 */
int bed_start(struct bed *bed, const char *const *options);

/* Stop the stack and remove its directory (unless BED_KEEP is set). */
void bed_stop(struct bed *bed);

/* The number of messages the card has logged so far: a mark. */
size_t bed_mark(const struct bed *bed);

/*
 * The kinds of the messages logged after @p mark, space-separated
 * ("GET_ATR POWER_ON GET_ATR"), GET_ATR polls included unless
 * @p skip_polls.  @retval buf
 */
char *bed_kinds(const struct bed *bed, size_t mark, bool skip_polls, char *buf, size_t len);

/* Poll (at most @p timeout_ms) until @p kind is logged after @p mark. */
bool bed_wait_kind(const struct bed *bed, const char *kind, size_t mark, int timeout_ms);

/*
 * Field @p field (0-based: 0 time, 1 kind, 2 hex, 3 answer, 4 text) of the
 * @p nth (0-based) message of kind @p kind after @p mark.
 * @retval true found
 */
bool bed_field(const struct bed *bed, const char *kind, size_t mark, int nth, int field,
	       char *buf, size_t len);
