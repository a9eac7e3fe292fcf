/*
 * replay_card.c — the replayed card's side of the vpcd protocol (see
 * replay_card.h).
 */
#include "replay_card.h"
#include "apdu.h"
#include "hexutil.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const match_names[] = {
	[REPLAY_UNMATCHED] = "UNMATCHED",
	[REPLAY_IN_CONTEXT] = "in context",
	[REPLAY_OUT_OF_CONTEXT] = "out of context",
	[REPLAY_IN_ORDER] = "in order",
};

static void
log_control(struct replay_card *card, const char *what)
{
	if (card->log) {
		fprintf(card->log, "%s\n", what);
		fflush(card->log);
	}
}

static void
report_apdu(struct replay_card *card, const uint8_t *cmd, size_t len,
	    const uint8_t *resp, size_t resp_len, int match, int64_t id)
{
	char *hex = malloc(2 * (len + resp_len) + 2);
	uint8_t *shown = NULL;
	char text[160];

	/* Never a PIN on the terminal or in a log: shown as recorded. */
	if (!hex || replay_normalize(cmd, len, &shown) < 0)
		goto out;
	cmd = shown;
	hex_encode(cmd, len, hex);
	if (match == REPLAY_UNMATCHED) {
		apdu_format_command(cmd, len, 16, text, sizeof(text));
		/* stderr, always: the test is meant to fail on it. */
		fprintf(stderr, "pcsctap replay: unmatched APDU %s (%s): answered %02X%02X\n",
			hex, text, resp[0], resp[1]);
	}
	if (card->log) {
		fprintf(card->log, "APDU %s -> ", hex);
		hex_encode(resp, resp_len, hex);
		if (match == REPLAY_UNMATCHED)
			fprintf(card->log, "%s  UNMATCHED\n", hex);
		else
			fprintf(card->log, "%s  %s #%lld\n", hex, match_names[match], (long long)id);
		fflush(card->log);
	}
out:
	free(shown);
	free(hex);
}

/*
 * Readiness as the card sees it: power-up and its GET ATR (cmd_replay.c
 * then asks pcscd whether its clients see the card).
 * @retval false the connection should end (polled, never powered)
 */
static bool
note_atr(struct replay_card *card)
{
	static const uint8_t one = 1;

	if (!card->powered)
		return !card->unpowered_polls_max || ++card->unpowered_polls < card->unpowered_polls_max;
	card->atrs_since_power++;
	if (card->ready)
		return true;
	card->ready = true;
	if (card->ready_fd >= 0)
		(void)!write(card->ready_fd, &one, 1);
	return true;
}

int
replay_card_serve(struct replay_card *card, int fd)
{
	static const char *const control_names[] = {
		[VPCD_CTRL_OFF] = "POWER_OFF",
		[VPCD_CTRL_ON] = "POWER_ON",
		[VPCD_CTRL_RESET] = "RESET",
	};
	uint8_t *msg = malloc(VPCD_FRAME_MAX);
	uint8_t *resp = malloc(REPLAY_RESPONSE_MAX);
	int rc = 0;

	if (!msg || !resp) {
		rc = -ENOMEM;
		goto out;
	}
	/* A new connection is a card inserted: nothing is selected. */
	replay_index_power(card->idx);
	card->connections++;
	card->unpowered_polls = 0;
	log_control(card, "CONNECTED");
	for (;;) {
		ssize_t n = vpcd_frame_read(fd, msg, VPCD_FRAME_MAX, -1);
		size_t resp_len = 2;
		int64_t id = 0;
		int match;

		if (n < 0)
			break;
		card->messages++;
		if (n == 1) {
			switch (msg[0]) {
			case VPCD_CTRL_OFF:
			case VPCD_CTRL_ON:
			case VPCD_CTRL_RESET:
				replay_index_power(card->idx);
				card->powered = card->powered || msg[0] == VPCD_CTRL_ON;
				log_control(card, control_names[msg[0]]);
				break;
			case VPCD_CTRL_ATR:
				if (vpcd_frame_write(fd, card->atr, card->atr_len) < 0)
					goto out;
				if (!note_atr(card))
					goto out;
				break;
			case VPCD_CTRL_MARKER:
				/* The body follows; the card never answers it. */
				if (vpcd_frame_read(fd, msg, VPCD_FRAME_MAX, 5000) < 0)
					goto out;
				log_control(card, "MARKER");
				break;
			default:
				log_control(card, "CONTROL (unknown)");
				break;
			}
			continue;
		}
		match = replay_index_answer(card->idx, msg, (size_t)n, resp, &resp_len, &id);
		if (match < 0) {
			rc = match;
			goto out;
		}
		if (match == REPLAY_UNMATCHED) {
			memcpy(resp, card->unmatched_sw, 2);
			resp_len = 2;
		}
		report_apdu(card, msg, (size_t)n, resp, resp_len, match, id);
		if (vpcd_frame_write(fd, resp, resp_len) < 0)
			goto out;
	}
	log_control(card, "DISCONNECTED");
out:
	free(msg);
	free(resp);
	return rc;
}
