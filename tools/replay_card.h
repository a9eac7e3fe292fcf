/*
 * replay_card.h — the replayed card on one vpcd connection: answers GET
 * ATR with the recorded ATR and each APDU from the replay index, tells the
 * index about power-ups and resets, skips session markers, and reports
 * every command that was never recorded.
 */
#pragma once

#include "replay_index.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct replay_card {
	struct replay_index *idx;
	uint8_t atr[33];
	size_t atr_len;
	uint8_t unmatched_sw[2];	/* the answer to an unknown command */
	FILE *log;		/* one line per message, or NULL */
	/*
	 * Readiness: pcscd has powered the card and read its ATR (whether
	 * its clients see the card yet, cmd_replay.c asks pcscd).  Written
	 * as one byte to ready_fd (-1: none).
	 */
	int ready_fd;
	/*
	 * With ready_fd: a connection polled this many times and never
	 * powered ends (pcscd took the card for the one before, which it
	 * had powered already; see cmd_replay.c).  0: no limit.
	 */
	unsigned unpowered_polls_max;
	unsigned unpowered_polls;
	bool ready;
	bool powered;
	unsigned atrs_since_power;
	/* What the card got, for a diagnosis when it never became ready. */
	unsigned connections;
	unsigned long messages;
};

/**
 * Serve one reader connection until it ends.
 * @retval 0 the reader closed the connection (or it failed)
 * @retval <0 negative errno: the index failed
 */
int replay_card_serve(struct replay_card *card, int fd);
