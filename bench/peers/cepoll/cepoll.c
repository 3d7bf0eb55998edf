// cepoll: a minimal single-threaded epoll line-echo server in C, the floor
// for bench/compare.sh. Level-triggered, one 64 KiB read buffer for all
// connections; a connection holds memory only for a partial line or for
// output the kernel did not take. Every complete line comes back as it
// arrived; a partial line waits for its '\n' (as netd's echo, mode: line).
//
//   cc -O2 -o cepoll cepoll.c && ./cepoll 127.0.0.1:9004
//   ./cepoll unix:///tmp/echo.sock
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LINE (64 << 10)

struct conn {
	char *in;       // partial line; NULL when none
	unsigned inlen, incap;
	char *out;      // output the kernel did not take; NULL when none
	unsigned outoff, outlen;
};

static struct conn *conns;
static int nconns, epfd, lfd, is_unix;
static char rbuf[64 << 10];

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void ctl(int op, int fd, unsigned ev) {
	struct epoll_event e = {.events = ev, .data.fd = fd};
	if (epoll_ctl(epfd, op, fd, &e) < 0 && op != EPOLL_CTL_DEL)
		die("epoll_ctl");
}

static void drop(int fd) {
	struct conn *c = &conns[fd];
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof *c);
	close(fd);
}

// send writes p straight to the kernel when nothing is queued and queues
// the rest. Returns -1 when the connection was dropped.
static int send_out(int fd, const char *p, unsigned n) {
	struct conn *c = &conns[fd];
	if (c->outlen == 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				drop(fd);
				return -1;
			}
			w = 0;
		}
		p += w;
		n -= (unsigned)w;
		if (n == 0)
			return 0;
		c->out = malloc(n);
		memcpy(c->out, p, n);
		c->outoff = 0;
		c->outlen = n;
		ctl(EPOLL_CTL_MOD, fd, EPOLLOUT); // stop reading until it drains
		return 0;
	}
	c->out = realloc(c->out, c->outoff + c->outlen + n);
	memcpy(c->out + c->outoff + c->outlen, p, n);
	c->outlen += n;
	return 0;
}

static void on_readable(int fd) {
	struct conn *c = &conns[fd];
	ssize_t n = read(fd, rbuf, sizeof rbuf);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		drop(fd);
		return;
	}
	char *data = rbuf;
	size_t len = (size_t)n;
	if (c->inlen > 0) {
		if (c->inlen + len > c->incap) {
			c->incap = (unsigned)(c->inlen + len);
			c->in = realloc(c->in, c->incap);
		}
		memcpy(c->in + c->inlen, rbuf, len);
		c->inlen += (unsigned)len;
		data = c->in;
		len = c->inlen;
	}
	char *nl = memrchr(data, '\n', len);
	size_t k = nl ? (size_t)(nl - data) + 1 : 0;
	if (k > 0 && send_out(fd, data, (unsigned)k) < 0)
		return;
	size_t rest = len - k;
	if (rest > MAX_LINE) {
		drop(fd);
		return;
	}
	if (rest == 0) {
		free(c->in);
		c->in = NULL;
		c->inlen = c->incap = 0;
	} else if (data == rbuf) {
		c->in = malloc(rest);
		memcpy(c->in, data + k, rest);
		c->inlen = c->incap = (unsigned)rest;
	} else {
		memmove(c->in, c->in + k, rest);
		c->inlen = (unsigned)rest;
	}
}

static void on_writable(int fd) {
	struct conn *c = &conns[fd];
	ssize_t w = write(fd, c->out + c->outoff, c->outlen);
	if (w < 0) {
		if (errno != EAGAIN && errno != EINTR)
			drop(fd);
		return;
	}
	c->outoff += (unsigned)w;
	c->outlen -= (unsigned)w;
	if (c->outlen == 0) {
		free(c->out);
		c->out = NULL;
		c->outoff = 0;
		ctl(EPOLL_CTL_MOD, fd, EPOLLIN);
	}
}

static void on_accept(void) {
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(5000); // out of descriptors: do not spin
			return;
		}
		if (fd >= nconns) {
			close(fd);
			continue;
		}
		if (!is_unix) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		}
		ctl(EPOLL_CTL_ADD, fd, EPOLLIN);
	}
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: cepoll [tcp://]IP:PORT | unix:///PATH\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	nconns = (int)rl.rlim_cur;
	conns = calloc((size_t)nconns, sizeof *conns); // pages are touched only where used

	const char *addr = argv[1];
	if (strncmp(addr, "tcp://", 6) == 0)
		addr += 6;
	if (strncmp(addr, "unix://", 7) == 0) {
		is_unix = 1;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		strncpy(sa.sun_path, addr + 7, sizeof sa.sun_path - 1);
		unlink(sa.sun_path);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
			die("bind");
	} else {
		char host[64];
		const char *colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof host) {
			fprintf(stderr, "bad address %s\n", addr);
			return 2;
		}
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = 0;
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			fprintf(stderr, "bad address %s\n", addr);
			return 2;
		}
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
			die("bind");
	}
	if (listen(lfd, 4096) < 0)
		die("listen");
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	ctl(EPOLL_CTL_ADD, lfd, EPOLLIN);

	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			unsigned ev = evs[i].events;
			if (fd == lfd) {
				on_accept();
				continue;
			}
			if (ev & EPOLLOUT)
				on_writable(fd);
			else if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(fd);
		}
	}
}
