/*
 * frame.c — vpcd framing (see wire.h).
 */
#include "wire.h"
#include "util.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

static int64_t
now_ms(void)
{
	return trace_mono_ns() / 1000000;
}

int
vpcd_frames_write(int fd, const struct vpcd_payload *frames, size_t n)
{
	uint8_t headers[8][2];
	struct iovec iov[16];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 * n };

	if (n > 8)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (frames[i].len > VPCD_FRAME_MAX)
			return -EMSGSIZE;
		headers[i][0] = (uint8_t)(frames[i].len >> 8);
		headers[i][1] = (uint8_t)frames[i].len;
		iov[2 * i].iov_base = headers[i];
		iov[2 * i].iov_len = 2;
		iov[2 * i + 1].iov_base = (void *)frames[i].data;
		iov[2 * i + 1].iov_len = frames[i].len;
	}

	while (msg.msg_iovlen > 0) {
		ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (msg.msg_iovlen > 0 && (size_t)sent >= msg.msg_iov[0].iov_len) {
			sent -= (ssize_t)msg.msg_iov[0].iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen > 0) {
			msg.msg_iov[0].iov_base = (uint8_t *)msg.msg_iov[0].iov_base + sent;
			msg.msg_iov[0].iov_len -= (size_t)sent;
		}
	}
	return 0;
}

int
vpcd_frame_write(int fd, const uint8_t *payload, size_t len)
{
	const struct vpcd_payload frame = { payload, len };

	return vpcd_frames_write(fd, &frame, 1);
}

/* Read exactly @p len bytes before @p deadline_ms (-1: none); NULL buf discards. */
static int
read_exact(int fd, uint8_t *buf, size_t len, int64_t deadline_ms)
{
	uint8_t sink[512];
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1;
		ssize_t n;
		size_t want = len - done;

		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - now_ms();

			/* Past the deadline, bytes already queued still count. */
			wait = left > 0 ? (int)left : 0;
		}
		n = poll(&pfd, 1, wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ETIMEDOUT;
		if (!buf && want > sizeof(sink))
			want = sizeof(sink);
		n = recv(fd, buf ? buf + done : sink, want, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

ssize_t
vpcd_frame_read(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint8_t header[2];
	size_t len;
	int rc;

	rc = read_exact(fd, header, sizeof(header), deadline);
	if (rc < 0)
		return rc;
	len = (size_t)header[0] << 8 | header[1];
	if (len > cap) {
		rc = read_exact(fd, NULL, len, deadline);
		return rc < 0 ? rc : -EMSGSIZE;
	}
	rc = read_exact(fd, buf, len, deadline);
	if (rc < 0)
		return rc;
	return (ssize_t)len;
}

/* Wait until @p fd is readable; bytes already queued count past the deadline. */
static int
wait_readable(int fd, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1;
		int n;

		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - now_ms();

			wait = left > 0 ? (int)left : 0;
		}
		n = poll(&pfd, 1, wait);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t
vpcd_frame_read_answer(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint8_t header[2];
	struct iovec iov[2] = { { header, sizeof(header) }, { buf, cap } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t len, got;
	ssize_t n;
	int rc;

	/* One scatter read takes a whole answer that arrived in one segment. */
	do {
		rc = wait_readable(fd, deadline);
		if (rc < 0)
			return rc;
		n = recvmsg(fd, &msg, 0);
	} while (n < 0 && (errno == EINTR || errno == EAGAIN));
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	if (n < (ssize_t)sizeof(header)) {
		rc = read_exact(fd, header + n, sizeof(header) - (size_t)n, deadline);
		if (rc < 0)
			return rc;
		n = sizeof(header);
	}
	got = (size_t)n - sizeof(header);
	len = (size_t)header[0] << 8 | header[1];
	/* More than one frame: the card sent what nobody asked for. */
	if (got > len)
		return -EPROTO;
	if (len > cap) {
		rc = read_exact(fd, NULL, len - got, deadline);
		return rc < 0 ? rc : -EMSGSIZE;
	}
	rc = read_exact(fd, buf + got, len - got, deadline);
	if (rc < 0)
		return rc;
	return (ssize_t)len;
}

void
vpcd_socket_tune(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
