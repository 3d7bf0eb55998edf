// loadgen: a single-threaded epoll load generator for line-echo servers,
// used by bench/compare.sh. It is the same kind of tool as the one behind
// the figures in issue 4 (one thread, pinned to its own core), and costs
// far less client CPU per line than `netd bench` (goroutines, Go's netpoller),
// so that the server rather than the client is what is measured. `netd bench`
// stays the user-facing load and soak tool.
//
// Each connection writes a batch of -n lines of -s bytes in one write(2),
// reads the whole echo back, checks every byte against what it sent, and
// writes the next batch: -n 1 is ping-pong, more is pipelined. After a
// warm-up (-w) it measures for -d seconds: lines echoed, latency of each
// batch (write to last echoed byte), and, given the server's PID, the
// server's CPU time (utime+stime from /proc/PID/stat) per echoed line.
// It prints one line of key=value pairs.
//
// With -i (idle), it opens -c connections, has each echo one line, prints
// "ready", and holds them until its standard input closes (or -d passes):
// compare.sh measures the server's RSS meanwhile.
//
//   cc -O2 -o loadgen loadgen.c
//   ./loadgen -a 127.0.0.1:9000 -c 64 -n 16 -d 10 -w 1 -p SERVER_PID
//   ./loadgen -a unix:///tmp/echo.sock -c 1 -d 5
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	unsigned sent;      // bytes of the current batch written
	unsigned rcvd;      // bytes of the current batch echoed
	uint64_t t0;        // when the batch was written, ns
	uint64_t batches;   // batches completed in the window
	int held;           // idle mode: echoed its line, now only held
	char *batch;        // what this connection sends, lines*linesize bytes
};

static struct conn *conns;
static int nconns = 64, lines = 1, linesize = 64, idle_mode, epfd;
static double duration = 10, warmup = 1;
static int server_pid;
static const char *addr = "127.0.0.1:9000";
static unsigned batchlen;
static uint64_t mismatches, errors_, window_lines, measuring;
static char rbuf[64 << 10];

// Latency histogram: 1 µs buckets below 65536 µs, then 1024 µs buckets up
// to about 8.4 s.
#define FINE 65536
#define COARSE 8192
static uint64_t hist[FINE + COARSE], hist_n;

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void record(uint64_t ns) {
	uint64_t us = ns / 1000;
	size_t i = us < FINE ? us : FINE + (us - FINE) / 1024;
	if (i >= FINE + COARSE)
		i = FINE + COARSE - 1;
	hist[i]++;
	hist_n++;
}

static double percentile(double q) {
	if (hist_n == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)hist_n), seen = 0;
	if (want >= hist_n)
		want = hist_n - 1;
	for (size_t i = 0; i < FINE + COARSE; i++) {
		seen += hist[i];
		if (seen > want)
			return i < FINE ? (double)i + 0.5 : (double)FINE + ((double)(i - FINE) + 0.5) * 1024;
	}
	return 0;
}

// server_cpu returns utime+stime of pid in seconds, or -1.
static double server_cpu(int pid) {
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long ut = 0, st = 0;
	// After ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime.
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long server_rss_kb(int pid) {
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static double self_cpu(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static struct sockaddr_storage sa;
static socklen_t salen;
static int family;

static void parse_addr(const char *a) {
	memset(&sa, 0, sizeof sa);
	if (strncmp(a, "tcp://", 6) == 0)
		a += 6;
	if (strncmp(a, "unix://", 7) == 0) {
		struct sockaddr_un *u = (struct sockaddr_un *)&sa;
		u->sun_family = AF_UNIX;
		strncpy(u->sun_path, a + 7, sizeof u->sun_path - 1);
		salen = sizeof *u;
		family = AF_UNIX;
		return;
	}
	const char *colon = strrchr(a, ':');
	char host[64];
	if (!colon || (size_t)(colon - a) >= sizeof host) {
		fprintf(stderr, "loadgen: bad address %s\n", a);
		exit(2);
	}
	memcpy(host, a, (size_t)(colon - a));
	host[colon - a] = 0;
	struct sockaddr_in *in = (struct sockaddr_in *)&sa;
	in->sin_family = AF_INET;
	in->sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
		fprintf(stderr, "loadgen: bad address %s\n", a);
		exit(2);
	}
	salen = sizeof *in;
	family = AF_INET;
}

// dial connects with a blocking connect (on loopback the handshake is done
// when it returns), then makes the socket non-blocking. A connect refused
// because the server's backlog is full is retried for a while.
static int dial(void) {
	for (int attempt = 0; attempt < 50; attempt++) {
		int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			perror("loadgen: socket");
			exit(1);
		}
		if (connect(fd, (struct sockaddr *)&sa, salen) == 0) {
			if (family != AF_UNIX) {
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			}
			fcntl(fd, F_SETFL, O_NONBLOCK);
			return fd;
		}
		int e = errno;
		close(fd);
		if (e != ECONNREFUSED && e != EAGAIN && e != ETIMEDOUT && e != EINTR) {
			fprintf(stderr, "loadgen: connect: %s\n", strerror(e));
			exit(1);
		}
		usleep(100000);
	}
	fprintf(stderr, "loadgen: connect: gave up\n");
	exit(1);
}

static void ctl(int op, int fd, unsigned ev, int idx) {
	struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)idx};
	if (epoll_ctl(epfd, op, fd, &e) < 0 && op != EPOLL_CTL_DEL) {
		perror("loadgen: epoll_ctl");
		exit(1);
	}
}

// reset closes with an RST, so that no TIME_WAIT is left behind.
static void reset(int fd) {
	struct linger lg = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

static void fail(int i, const char *why) {
	struct conn *c = &conns[i];
	if (c->fd < 0)
		return;
	if (errors_ < 5)
		fprintf(stderr, "loadgen: connection %d: %s\n", i, why);
	errors_++;
	reset(c->fd);
	c->fd = -1;
}

// send_batch writes what is left of the current batch.
static void send_batch(int i) {
	struct conn *c = &conns[i];
	if (c->sent == 0)
		c->t0 = now_ns();
	while (c->sent < batchlen) {
		ssize_t w = write(c->fd, c->batch + c->sent, batchlen - c->sent);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, i);
				return;
			}
			fail(i, strerror(errno));
			return;
		}
		c->sent += (unsigned)w;
		if (c->sent == batchlen && w != (ssize_t)batchlen)
			ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN, i);
	}
}

// on_readable reads once and checks the bytes; a whole batch echoed
// starts the next one (unless idle, when the connection just stays).
static void on_readable(int i) {
	struct conn *c = &conns[i];
	ssize_t n = read(c->fd, rbuf, sizeof rbuf);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		fail(i, n == 0 ? "server closed the connection" : strerror(errno));
		return;
	}
	if (c->rcvd + (unsigned)n > c->sent || memcmp(rbuf, c->batch + c->rcvd, (size_t)n) != 0) {
		mismatches++;
		fail(i, "echo differs from what was sent");
		return;
	}
	c->rcvd += (unsigned)n;
	if (c->rcvd < batchlen)
		return;
	if (measuring) {
		record(now_ns() - c->t0);
		window_lines += (uint64_t)lines;
		c->batches++;
	}
	c->sent = c->rcvd = 0;
	if (!idle_mode)
		send_batch(i);
}

static void usage(void) {
	fprintf(stderr,
	        "usage: loadgen [-a ADDR] [-c CONNS] [-n LINES_IN_FLIGHT] [-s LINE_SIZE] [-d SECONDS] [-w WARMUP_SECONDS] [-p SERVER_PID] [-i]\n"
	        "  ADDR: [tcp://]IP:PORT or unix:///PATH\n"
	        "  -i: idle: each connection echoes one line, then all are held until stdin closes\n");
	exit(2);
}

int main(int argc, char **argv) {
	int opt;
	while ((opt = getopt(argc, argv, "a:c:n:s:d:w:p:ih")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'c': nconns = atoi(optarg); break;
		case 'n': lines = atoi(optarg); break;
		case 's': linesize = atoi(optarg); break;
		case 'd': duration = atof(optarg); break;
		case 'w': warmup = atof(optarg); break;
		case 'p': server_pid = atoi(optarg); break;
		case 'i': idle_mode = 1; break;
		default: usage();
		}
	}
	if (nconns < 1 || lines < 1 || linesize < 2 || duration <= 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)nconns + 16 > rl.rlim_cur) {
		fprintf(stderr, "loadgen: %d connections need more than the %lu descriptors allowed\n", nconns, (unsigned long)rl.rlim_cur);
		return 1;
	}
	if (idle_mode)
		lines = 1;
	parse_addr(addr);
	batchlen = (unsigned)(lines * linesize);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)nconns, sizeof *conns);
	char *all = malloc((size_t)nconns * batchlen);
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		c->batch = all + (size_t)i * batchlen;
		// Printable bytes that differ from line to line and from
		// connection to connection, '\n' at the end of each line.
		for (unsigned j = 0; j < batchlen; j++)
			c->batch[j] = (j % (unsigned)linesize == (unsigned)linesize - 1)
			                  ? '\n'
			                  : (char)('!' + (i * 7 + (int)(j / (unsigned)linesize) * 13 + (int)j) % 90);
		c->fd = dial();
		ctl(EPOLL_CTL_ADD, c->fd, EPOLLIN, i);
	}

	struct epoll_event evs[1024];
	uint64_t start = now_ns();
	for (int i = 0; i < nconns; i++)
		send_batch(i);

	if (idle_mode) {
		// Wait until every connection has had its line echoed.
		int pending = nconns;
		while (pending > 0 && now_ns() - start < (uint64_t)(30 * 1e9)) {
			int n = epoll_wait(epfd, evs, 1024, 100);
			for (int k = 0; k < n; k++) {
				int i = (int)evs[k].data.u32;
				struct conn *c = &conns[i];
				if (c->fd < 0 || c->held)
					continue;
				on_readable(i);
				if (c->fd < 0) {
					pending--;
				} else if (c->rcvd == 0 && c->sent == 0) {
					c->held = 1;
					ctl(EPOLL_CTL_MOD, c->fd, EPOLLRDHUP, i); // no more reads
					pending--;
				}
			}
		}
		int live = 0;
		for (int i = 0; i < nconns; i++)
			live += conns[i].fd >= 0;
		printf("ready conns=%d echoed=%d mismatches=%llu errors=%llu\n", nconns, live,
		       (unsigned long long)mismatches, (unsigned long long)errors_);
		fflush(stdout);
		// Hold until stdin closes or the duration passes.
		struct pollfd p = {.fd = 0, .events = POLLIN};
		uint64_t until = now_ns() + (uint64_t)(duration * 1e9);
		char junk[256];
		while (now_ns() < until) {
			int r = poll(&p, 1, 100);
			if (r > 0 && read(0, junk, sizeof junk) <= 0)
				break;
		}
		for (int i = 0; i < nconns; i++)
			if (conns[i].fd >= 0)
				reset(conns[i].fd);
		return mismatches ? 1 : 0;
	}

	uint64_t warm_end = start + (uint64_t)(warmup * 1e9), win_start = 0, win_end = 0;
	double cpu0 = 0, self0 = 0;
	if (warmup <= 0) {
		measuring = 1;
		win_start = start;
		win_end = start + (uint64_t)(duration * 1e9);
		cpu0 = server_pid ? server_cpu(server_pid) : 0;
		self0 = self_cpu();
	}
	for (;;) {
		int n = epoll_wait(epfd, evs, 1024, 50);
		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			return 1;
		}
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			if (conns[i].fd < 0)
				continue;
			if (evs[k].events & EPOLLOUT)
				send_batch(i);
			if (conns[i].fd >= 0 && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_readable(i);
		}
		uint64_t t = now_ns();
		if (!measuring && t >= warm_end) {
			measuring = 1;
			win_start = t;
			win_end = t + (uint64_t)(duration * 1e9);
			cpu0 = server_pid ? server_cpu(server_pid) : 0;
			self0 = self_cpu();
		}
		if (measuring && t >= win_end)
			break;
	}
	uint64_t t1 = now_ns();
	double cpu1 = server_pid ? server_cpu(server_pid) : 0, self1 = self_cpu();
	double secs = (double)(t1 - win_start) / 1e9;
	int active = 0;
	for (int i = 0; i < nconns; i++)
		active += conns[i].batches > 0;
	double per = window_lines ? 1e9 / (double)window_lines : 0;
	printf("lines=%llu secs=%.3f lines_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
	       "server_cpu_ns_per_line=%.0f client_cpu_ns_per_line=%.0f server_cpu_util=%.3f "
	       "conns=%d conns_active=%d mismatches=%llu errors=%llu server_rss_kb=%ld\n",
	       (unsigned long long)window_lines, secs, (double)window_lines / secs,
	       percentile(0.50), percentile(0.99), percentile(0.999),
	       server_pid ? (cpu1 - cpu0) * per : 0, (self1 - self0) * per,
	       server_pid ? (cpu1 - cpu0) / secs : 0, nconns, active,
	       (unsigned long long)mismatches, (unsigned long long)errors_,
	       server_pid ? server_rss_kb(server_pid) : 0);
	for (int i = 0; i < nconns; i++)
		if (conns[i].fd >= 0)
			reset(conns[i].fd);
	return mismatches || window_lines == 0 ? 1 : 0;
}
