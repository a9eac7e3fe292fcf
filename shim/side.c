/*
 * side.c — the shim's end of the driver's marker side channel (wire.h,
 * proxy/sidechannel.c): used only when pcscd refused the application's
 * own handle because another handle holds a transaction.
 *
 * One short connection per request, never blocking in connect and
 * bounded by SIDE_TIMEOUT_MS for the answer; nothing is kept open, so fork() and exec() need no care.  The socket is in the
 * directory of the socket the client library uses (PCSCLITE_CSOCK_NAME,
 * or SIDE_SOCKET_DIR), read once.
 */
#include "shim.h"
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static pthread_once_t dir_once = PTHREAD_ONCE_INIT;
static char dir[sizeof(((struct sockaddr_un *)0)->sun_path)] = SIDE_SOCKET_DIR;

static void
read_dir(void)
{
	const char *csock = secure_getenv("PCSCLITE_CSOCK_NAME");
	const char *slash = csock ? strrchr(csock, '/') : NULL;

	if (slash && (size_t)(slash - csock) < sizeof(dir)) {
		memcpy(dir, csock, (size_t)(slash - csock));
		dir[slash - csock] = '\0';
	}
}

void
shim_side_reset(void)
{
	/* Tests point PCSCLITE_CSOCK_NAME elsewhere between cases. */
	dir_once = (pthread_once_t)PTHREAD_ONCE_INIT;
	snprintf(dir, sizeof(dir), "%s", SIDE_SOCKET_DIR);
}

/*
 * Send @p req to the side channel of @p reader and read the answer.
 * @retval >0 answer length
 * @retval <0 negative errno (-ENOENT: no pcsctap side channel there)
 */
static ssize_t
request(const char *reader, const uint8_t *req, size_t len, uint8_t *answer, size_t cap)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	unsigned reader_no, slot_no;
	char name[32];
	ssize_t n;
	int fd, rc;

	if (side_reader_numbers(reader, &reader_no, &slot_no) < 0)
		return -EINVAL;
	pthread_once(&dir_once, read_dir);
	side_socket_name(name, sizeof(name), reader_no, slot_no);
	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", dir, name) >=
	    sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	/* Non-blocking: a full backlog must fail the connect, not hold the application. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		n = -errno;
		goto out;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	rc = poll(&pfd, 1, SIDE_TIMEOUT_MS);
	if (rc != 1) {
		n = rc == 0 ? -ETIMEDOUT : -errno;
		goto out;
	}
	n = recv(fd, answer, cap, MSG_DONTWAIT);
	if (n < 0)
		n = -errno;
	else if (n == 0)
		n = -ECONNRESET;
out:
	close(fd);
	return n;
}

int
shim_side_hello(const char *reader, struct shim_side_hello *h)
{
	const uint8_t req = SIDE_HELLO;
	uint8_t answer[SIDE_ANSWER_MAX];
	ssize_t n = request(reader, &req, 1, answer, sizeof(answer));

	if (n < 0)
		return (int)n;
	if (n < 9 || answer[0] != SIDE_OK)
		return -EPROTO;
	h->code = wire_get_u32(answer + 1);
	h->token = wire_get_u32(answer + 5);
	h->atr_len = (size_t)n - 9;
	memcpy(h->atr, answer + 9, h->atr_len);
	return 0;
}

int
shim_side_marker(const char *reader, uint32_t token, const uint8_t *body, size_t len)
{
	uint8_t req[SIDE_REQUEST_MAX], status;
	ssize_t n;

	if (len > MARKER_MAX_BODY)
		return -EINVAL;
	req[0] = SIDE_MARKER;
	wire_put_u32(req + 1, token);
	memcpy(req + 5, body, len);
	n = request(reader, req, 5 + len, &status, 1);
	if (n < 0)
		return (int)n;
	return status;
}
