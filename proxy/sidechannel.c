/*
 * sidechannel.c — the marker side channel of a slot (markers on only).
 *
 * pcscd answers SCardControl with SCARD_E_SHARING_VIOLATION while another
 * handle holds a transaction, so a shim's marker (or its feature
 * discovery) would be lost exactly when clients contend for the card.
 * This socket does not pass through pcscd's lock checks: a client that
 * met the violation sends the marker here instead, and the driver writes
 * it between two exchanges of the slot, under the slot's lock, as it
 * would have written it from IFDHControl.  Protocol and names: wire.h
 * ("The marker side channel"), docs/markers.md section 2.
 *
 * Trust: the socket is 0666 like pcscd's own, but a marker is only taken
 * for the peer's own pid (SO_PEERCRED) and only if it decodes; a request
 * names the slot's token, which a client learns from this slot's feature
 * answer or its hello, so a marker meant for another reader or an earlier
 * pcscd is refused.  One thread per slot serves one short request at a
 * time, each bounded by SIDE_TIMEOUT_MS.
 */
#include "driver.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct sidechannel {
	struct slot *slot;
	int listen_fd;
	int wake[2];		/* a byte on wake[1] stops the thread */
	pthread_t thread;
	uint32_t token;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;		/* the socket file we created, to unlink only it */
	ino_t ino;
};

static pthread_mutex_t channels_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sidechannel *channels[DRIVER_READERS][DRIVER_SLOTS];

static struct sidechannel **
channel_entry(const struct slot *s)
{
	unsigned long reader = (s->lun >> 16) & 0xFFFF;

	if (reader >= DRIVER_READERS || s->index >= DRIVER_SLOTS)
		return NULL;
	return &channels[reader][s->index];
}

static size_t
answer_hello(struct sidechannel *sc, uint8_t *out)
{
	struct slot *s = sc->slot;
	size_t len = 9;

	out[0] = SIDE_OK;
	wire_put_u32(out + 1, MARKER_CONTROL_CODE);
	wire_put_u32(out + 5, sc->token);
	pthread_mutex_lock(&s->lock);
	if (s->fd >= 0 && s->atr_len <= DRIVER_ATR_MAX) {
		memcpy(out + len, s->atr, s->atr_len);
		len += s->atr_len;
	}
	pthread_mutex_unlock(&s->lock);
	return len;
}

static uint8_t
take_marker(struct sidechannel *sc, const uint8_t *req, size_t len, pid_t peer)
{
	const uint8_t *body = req + 5;
	size_t body_len = len - 5;
	struct marker m;
	int rc;

	if (len < 5 + 2 || body_len > MARKER_MAX_BODY || marker_decode(&m, body, body_len) < 0)
		return SIDE_MALFORMED;
	if (wire_get_u32(req + 1) != sc->token)
		return SIDE_WRONG_TOKEN;
	if (!(m.present & MARKER_HAS(MARKER_TAG_PID)) || m.pid != (uint32_t)peer)
		return SIDE_NOT_YOURS;
	/* As from IFDHControl: in use is announced first. */
	occupancy_before_use(sc->slot);
	pthread_mutex_lock(&sc->slot->lock);
	rc = slot_marker(sc->slot, body, body_len);
	pthread_mutex_unlock(&sc->slot->lock);
	/* Tests count these lines to prove that contention happened. */
	driver_log(DRIVER_LOG_DEBUG, "pcsctap: side channel marker of pid %ld: %s", (long)peer,
		   rc < 0 ? "not sent" : "sent");
	return rc < 0 ? SIDE_NO_CARD : SIDE_OK;
}

/* One request on @p fd and its answer. */
static void
serve_one(struct sidechannel *sc, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t req[SIDE_REQUEST_MAX], answer[SIDE_ANSWER_MAX];
	struct ucred cred;
	socklen_t cred_len = sizeof(cred);
	size_t answer_len = 1;
	ssize_t n;

	if (poll(&pfd, 1, SIDE_TIMEOUT_MS) != 1)
		return;
	n = recv(fd, req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
	if (n <= 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0)
		return;
	answer[0] = SIDE_MALFORMED;
	if ((size_t)n > sizeof(req))
		;	/* longer than any request: truncated, refused */
	else if (req[0] == SIDE_HELLO && n == 1)
		answer_len = answer_hello(sc, answer);
	else if (req[0] == SIDE_MARKER)
		answer[0] = take_marker(sc, req, (size_t)n, cred.pid);
	if (answer[0] == SIDE_NOT_YOURS || answer[0] == SIDE_MALFORMED)
		driver_log(DRIVER_LOG_ERROR, "pcsctap: side channel of port %u: request of pid %ld refused (%u)",
			   sc->slot->port, (long)cred.pid, answer[0]);
	(void)send(fd, answer, answer_len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void *
serve(void *arg)
{
	struct sidechannel *sc = arg;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sc->listen_fd, .events = POLLIN },
			{ .fd = sc->wake[0], .events = POLLIN },
		};
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		fd = accept4(sc->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		serve_one(sc, fd);
		close(fd);
	}
	return NULL;
}

/*
 * Bind the socket file: a stale socket of an earlier pcscd is replaced,
 * anything else at the path is left alone (bind never follows a symlink).
 * The mode is set through the bound file itself, never through the name.
 */
static int
bind_socket(struct sidechannel *sc)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	char proc[64];
	int fd, file = -1, rc;

	if (lstat(sc->path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(sc->path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(addr.sun_path, sc->path, strlen(sc->path) + 1);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		goto fail;
	}
	file = open(sc->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (file < 0 || fstat(file, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		rc = -EEXIST;
		goto fail;
	}
	/* Any client may speak, each only for its own pid (SO_PEERCRED). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", file);
	if (chmod(proc, 0666) < 0)
		driver_log(DRIVER_LOG_INFO, "pcsctap: %s keeps its mode (%s): only its owner can use it",
			   sc->path, strerror(errno));
	sc->dev = st.st_dev;
	sc->ino = st.st_ino;
	close(file);
	sc->listen_fd = fd;
	return 0;
fail:
	if (file >= 0)
		close(file);
	close(fd);
	return rc;
}

static void
unlink_ours(const struct sidechannel *sc)
{
	struct stat st;

	if (lstat(sc->path, &st) == 0 && st.st_dev == sc->dev && st.st_ino == sc->ino)
		(void)unlink(sc->path);
}

int
sidechannel_start(struct slot *s, const char *dir)
{
	struct sidechannel **entry = channel_entry(s), *sc;
	char name[32];
	int rc = -ENOMEM;

	if (!entry)
		return -EINVAL;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->slot = s;
	sc->listen_fd = -1;
	sc->wake[0] = sc->wake[1] = -1;
	do {
		if (getrandom(&sc->token, sizeof(sc->token), 0) != sizeof(sc->token)) {
			rc = -EIO;
			goto fail;
		}
	} while (!sc->token);
	side_socket_name(name, sizeof(name), (unsigned)(s->lun >> 16), s->index);
	if ((size_t)snprintf(sc->path, sizeof(sc->path), "%s/%s", dir, name) >= sizeof(sc->path)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	rc = bind_socket(sc);
	if (rc < 0)
		goto fail;
	if (pipe2(sc->wake, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = -pthread_create(&sc->thread, NULL, serve, sc);
	if (rc < 0)
		goto fail;
	pthread_mutex_lock(&channels_lock);
	*entry = sc;
	pthread_mutex_unlock(&channels_lock);
	driver_log(DRIVER_LOG_INFO, "pcsctap: marker side channel %s", sc->path);
	return 0;
fail:
	driver_log(DRIVER_LOG_ERROR, "pcsctap: no marker side channel at %s: %s "
		   "(markers meeting another client's transaction are lost)", sc->path, strerror(-rc));
	if (sc->listen_fd >= 0) {
		unlink_ours(sc);
		close(sc->listen_fd);
	}
	if (sc->wake[0] >= 0) {
		close(sc->wake[0]);
		close(sc->wake[1]);
	}
	free(sc);
	return rc;
}

void
sidechannel_stop(struct slot *s)
{
	struct sidechannel **entry = channel_entry(s), *sc;
	static const char stop = 0;

	if (!entry)
		return;
	pthread_mutex_lock(&channels_lock);
	sc = *entry;
	*entry = NULL;
	pthread_mutex_unlock(&channels_lock);
	if (!sc)
		return;
	/* The thread may be writing a marker: it needs the slot until it joins. */
	while (write(sc->wake[1], &stop, 1) < 0 && errno == EINTR)
		;
	pthread_join(sc->thread, NULL);
	unlink_ours(sc);
	close(sc->listen_fd);
	close(sc->wake[0]);
	close(sc->wake[1]);
	free(sc);
}

uint32_t
sidechannel_token(const struct slot *s)
{
	struct sidechannel **entry = channel_entry(s);
	uint32_t token = 0;

	if (!entry)
		return 0;
	pthread_mutex_lock(&channels_lock);
	if (*entry)
		token = (*entry)->token;
	pthread_mutex_unlock(&channels_lock);
	return token;
}
