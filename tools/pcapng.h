/*
 * pcapng.h — a minimal pcapng writer (libpcap 1.10 writes classic pcap only),
 * and the Wireshark "exported PDU" records (link type 252) that carry
 * APDUs to the iso7816 dissector.  Wireshark has no ISO 7816 link type;
 * link type 252 records start with TLVs naming the dissector (tag 12) and
 * the direction (tag 35), without which iso7816 decodes nothing, so every
 * record carries both tag 35 and the epb_flags direction (checked with
 * tshark 4.0, tests/tools/test_export.sh).
 *
 * One section; interfaces may be added at any time before their first
 * packet; timestamps are nanoseconds since the epoch (if_tsresol 9).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LINKTYPE_WIRESHARK_UPPER_PDU 252

/* epb_flags direction bits (pcapng spec, section 4.3.1). */
#define PCAPNG_EPB_INBOUND 1u
#define PCAPNG_EPB_OUTBOUND 2u

/* Exported PDU tags (wireshark epan/exported_pdu.h). */
#define EXP_PDU_TAG_END_OF_OPT 0
#define EXP_PDU_TAG_DISSECTOR_NAME 12
#define EXP_PDU_TAG_P2P_DIRECTION 35

/* Exported PDU direction (tag 35): host -> card is "sent". */
#define EXP_PDU_DIR_NONE (-1)
#define EXP_PDU_DIR_SENT 0
#define EXP_PDU_DIR_RECEIVED 1

struct pcapng_writer;

/**
 * Start a pcapng stream on @p f (the caller keeps ownership of @p f) and
 * write the section header.
 * @param[in] application shb_userappl text, may be NULL
 * @retval 0 success
 * @retval -ENOMEM, -EIO
 */
int pcapng_writer_open(struct pcapng_writer **out, FILE *f, const char *application);

/**
 * Add an interface (IDB) named @p name (may be NULL).
 * @param[out] id its number, for pcapng_write_packet()
 * @retval 0 success
 * @retval -EIO write failed
 */
int pcapng_add_interface(struct pcapng_writer *w, uint16_t linktype,
			 const char *name, uint32_t *id);

/**
 * Write one enhanced packet block of @p len captured bytes.
 * @param[in] orig_len the packet's length before it was cut (>= @p len)
 * @param[in] flags epb_flags (0: none written)
 * @param[in] comment opt_comment (NULL or "": none); cut at 65535 bytes
 * @retval 0 success
 * @retval -EINVAL unknown interface or a packet over 16 MiB
 * @retval -EIO write failed
 */
int pcapng_write_packet(struct pcapng_writer *w, uint32_t iface, int64_t ts_ns,
			const uint8_t *data, size_t len, size_t orig_len, uint32_t flags,
			const char *comment);

/**
 * Flush and free the writer (not the FILE).
 * @retval 0 everything written
 * @retval -EIO a write or the flush failed
 */
int pcapng_writer_close(struct pcapng_writer *w);

/**
 * Build an exported-PDU record: tag 12 (@p dissector), tag 35 when
 * @p direction is not EXP_PDU_DIR_NONE, end tag, then @p payload.
 * @retval the record's size; nothing is written when it exceeds @p cap
 */
size_t exported_pdu_build(uint8_t *buf, size_t cap, const char *dissector,
			  int direction, const uint8_t *payload, size_t len);

/**
 * Check the block structure of a little- or big-endian pcapng image:
 * every block's two lengths agree, are multiples of 4 and stay inside.
 * @retval >=0 number of blocks
 * @retval -EPROTO malformed
 */
int pcapng_check(const uint8_t *buf, size_t len);
