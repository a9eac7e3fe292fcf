/*
 * test_wire.c — unit tests of the wire protocol library (proxy/wire/):
 * multi-frame writes and the part 10 feature list.  The marker body has
 * its vectors in marker_vectors.c and a fuzz target.
 */
#include "wire.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

Test(frames, two_frames_in_one_write_read_back_as_two)
{
	static const uint8_t announce = VPCD_CTRL_MARKER;
	static const uint8_t body[] = { 0x01, 0x01, 0x02, 0x03 };
	const struct vpcd_payload frames[2] = { { &announce, 1 }, { body, sizeof(body) } };
	uint8_t raw[16], buf[16];
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(vpcd_frames_write(sv[0], frames, 2), 0);
	/* The exact bytes: 00 01 05, 00 04 body. */
	cr_assert_eq(recv(sv[1], raw, sizeof(raw), MSG_PEEK), 9);
	cr_expect_arr_eq(raw, ((uint8_t[]){ 0, 1, 5, 0, 4, 1, 1, 2, 3 }), 9);
	cr_assert_eq(vpcd_frame_read(sv[1], buf, sizeof(buf), 1000), 1);
	cr_expect_eq(buf[0], VPCD_CTRL_MARKER);
	cr_assert_eq(vpcd_frame_read(sv[1], buf, sizeof(buf), 1000), (ssize_t)sizeof(body));
	cr_expect_arr_eq(buf, body, sizeof(body));
	close(sv[0]);
	close(sv[1]);
}

Test(frames, oversized_payload_is_refused_before_anything_is_sent)
{
	static uint8_t big[VPCD_FRAME_MAX + 1];
	const struct vpcd_payload frames[2] = { { big, 2 }, { big, sizeof(big) } };
	uint8_t b;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	cr_expect_eq(vpcd_frames_write(sv[0], frames, 2), -EMSGSIZE);
	cr_expect_eq(vpcd_frame_write(sv[0], big, sizeof(big)), -EMSGSIZE);
	cr_expect_eq(recv(sv[1], &b, 1, 0), -1);
	cr_expect_eq(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

Test(features, put_then_find)
{
	uint8_t list[2 * FEATURE_TLV_SIZE];

	feature_put(list, 0x12, 0x42330012u);
	feature_put(list + FEATURE_TLV_SIZE, MARKER_FEATURE_TAG, MARKER_CONTROL_CODE);
	cr_expect_arr_eq(list + FEATURE_TLV_SIZE, ((uint8_t[]){ 0xA5, 4, 0x42, 0x33, 0x00, 0xA5 }), 6);
	cr_expect_eq(feature_find(list, sizeof(list), MARKER_FEATURE_TAG), MARKER_CONTROL_CODE);
	cr_expect_eq(feature_find(list, sizeof(list), 0x12), 0x42330012u);
	cr_expect_eq(feature_find(list, sizeof(list), 0x13), 0);
	cr_expect_eq(feature_find(list, 0, 0x12), 0);
}

Test(features, entries_past_the_end_or_of_another_length_do_not_count)
{
	/* The marker entry is cut off after 5 bytes. */
	static const uint8_t cut[] = { 0xA5, 4, 0x42, 0x33, 0x00 };
	/* A 2-byte entry whose bytes look like the marker tag, then the real one. */
	static const uint8_t odd[] = { 0x20, 2, 0xA5, 4, 0xA5, 4, 0x42, 0x33, 0x00, 0xA5 };
	/* Length 3 for the marker tag: not a feature entry. */
	static const uint8_t three[] = { 0xA5, 3, 0x42, 0x33, 0x00, 0xA5 };

	cr_expect_eq(feature_find(cut, sizeof(cut), MARKER_FEATURE_TAG), 0);
	cr_expect_eq(feature_find(odd, sizeof(odd), MARKER_FEATURE_TAG), MARKER_CONTROL_CODE);
	cr_expect_eq(feature_find(three, sizeof(three), MARKER_FEATURE_TAG), 0);
}
