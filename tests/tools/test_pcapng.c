/* Unit tests for tools/pcapng.c: block layout, read back through libpcap. */
#include "pcapng.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t select_apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00 };

Test(pcapng, exported_pdu)
{
	uint8_t buf[64];
	size_t n = exported_pdu_build(buf, sizeof(buf), "iso7816", EXP_PDU_DIR_RECEIVED,
				      select_apdu, sizeof(select_apdu));
	static const uint8_t want[] = {
		0, 12, 0, 7, 'i', 's', 'o', '7', '8', '1', '6',
		0, 35, 0, 4, 0, 0, 0, 1,
		0, 0, 0, 0,
		0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00,
	};

	cr_assert_eq(n, sizeof(want));
	cr_expect_arr_eq(buf, want, sizeof(want));
	/* Too small: the size needed, and nothing else. */
	cr_expect_eq(exported_pdu_build(buf, 4, "iso7816", 0, select_apdu, 7), sizeof(want));
	cr_expect_eq(exported_pdu_build(buf, sizeof(buf), "syslog", EXP_PDU_DIR_NONE, NULL, 0),
		     4 + 6 + 4);
}

Test(pcapng, blocks_and_libpcap)
{
	char *mem = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&mem, &size);
	struct pcapng_writer *w;
	uint32_t a, b;
	char path[] = "/tmp/pcsctap-test-XXXXXX";
	int fd;
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *p;
	struct pcap_pkthdr *hdr;
	const u_char *data;
	int n = 0;

	cr_assert_not_null(f);
	cr_assert_eq(pcapng_writer_open(&w, f, "pcsctap test"), 0);
	cr_assert_eq(pcapng_add_interface(w, LINKTYPE_WIRESHARK_UPPER_PDU, "Reader A 00 00", &a), 0);
	cr_assert_eq(pcapng_add_interface(w, LINKTYPE_WIRESHARK_UPPER_PDU, NULL, &b), 0);
	cr_expect_eq(a, 0);
	cr_expect_eq(b, 1);
	cr_assert_eq(pcapng_write_packet(w, a, 1700000000123456789LL, select_apdu,
					 sizeof(select_apdu), sizeof(select_apdu), PCAPNG_EPB_OUTBOUND,
					 "pid=1"), 0);
	cr_assert_eq(pcapng_write_packet(w, b, 1700000000123456790LL, select_apdu, 5, 5, 0, NULL), 0);
	cr_expect_eq(pcapng_write_packet(w, 7, 0, select_apdu, 5, 5, 0, NULL), -EINVAL);
	cr_assert_eq(pcapng_writer_close(w), 0);
	fclose(f);

	/* SHB, 2 IDBs, 2 EPBs. */
	cr_expect_eq(pcapng_check((const uint8_t *)mem, size), 5);
	cr_expect_eq(pcapng_check((const uint8_t *)mem, size - 4), -EPROTO);

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, mem, size), (ssize_t)size);
	close(fd);
	p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	cr_assert_not_null(p, "%s", err);
	cr_expect_eq(pcap_datalink(p), LINKTYPE_WIRESHARK_UPPER_PDU);
	while (pcap_next_ex(p, &hdr, &data) == 1) {
		if (n == 0) {
			cr_expect_eq(hdr->caplen, sizeof(select_apdu));
			cr_expect_eq(hdr->ts.tv_sec, 1700000000);
			cr_expect_eq(hdr->ts.tv_usec, 123456789);
			cr_expect_arr_eq(data, select_apdu, sizeof(select_apdu));
		}
		n++;
	}
	cr_expect_eq(n, 2);
	pcap_close(p);
	unlink(path);
	free(mem);
}

Test(pcapng, check_rejects_garbage)
{
	uint8_t junk[16] = { 1, 2, 3 };

	cr_expect_eq(pcapng_check(junk, sizeof(junk)), -EPROTO);
	cr_expect_eq(pcapng_check(junk, 0), 0);
}
