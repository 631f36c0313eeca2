/* SPDX-License-Identifier: MIT */
/*
 * test_slirp.c - the libslirp module answers like a gateway: ARP for 10.0.2.2, ICMP echo to
 * 10.0.2.2, a DHCP offer of 10.0.2.15, UDP to the host and back, a forwarded host port
 * arriving as a SYN to the guest, 10.0.2.2 reaching the host's 127.0.0.1 only with
 * host_loopback (TCP and UDP), IPv6 neighbour discovery and echo (when enabled), a frame
 * fd served by the slirp thread, and bad frames rejected or ignored without a crash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "microvm/error.h"
#include "net/slirp.h"

#define MAX_FRAMES 64

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* Frames received from slirp, collected by the rx callback on the slirp thread. */
struct sink {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *frames[MAX_FRAMES];
	size_t lens[MAX_FRAMES];
	size_t n;
	size_t seen;	/* frames already examined by wait_frame() */
};

static void sink_rx(void *opaque, const uint8_t *frame, size_t len)
{
	struct sink *k = opaque;

	pthread_mutex_lock(&k->lock);
	if (k->n < MAX_FRAMES) {
		k->frames[k->n] = malloc(len);
		memcpy(k->frames[k->n], frame, len);
		k->lens[k->n++] = len;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
}

typedef int (*frame_pred)(const uint8_t *f, size_t len, void *arg);

/* Wait up to 3 s for a not-yet-seen frame matching @pred; return its index or -1. */
static int wait_frame(struct sink *k, frame_pred pred, void *arg)
{
	struct timespec dl;
	int found = -1;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 3;
	pthread_mutex_lock(&k->lock);
	while (found < 0) {
		for (; k->seen < k->n; k->seen++) {
			if (pred(k->frames[k->seen], k->lens[k->seen], arg)) {
				found = (int)k->seen++;
				break;
			}
		}
		if (found >= 0)
			break;
		if (pthread_cond_timedwait(&k->cond, &k->lock, &dl) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t eth_hdr(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, type);
	return 14;
}

/* IPv4 header at @ip with @payload_len bytes following; returns 20. */
static size_t ip_hdr(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst, size_t payload_len)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + payload_len));
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, csum(ip, 20));
	return 20;
}

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

struct fixture {
	struct sink k;
	struct mvm_slirp *s;
	uint8_t gw_mac[6];
};

static int is_arp_reply(const uint8_t *f, size_t len, void *arg)
{
	(void)arg;
	return len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 2;
}

/* ARP for 10.0.2.2; check the reply and remember the gateway's MAC. */
static void arp_gateway(struct fixture *fx)
{
	uint8_t f[42];
	size_t o = eth_hdr(f, bcast_mac, 0x0806);
	const uint8_t *r;
	int i;

	put16(f + o, 1);		/* Ethernet */
	put16(f + o + 2, 0x0800);	/* IPv4 */
	f[o + 4] = 6;
	f[o + 5] = 4;
	put16(f + o + 6, 1);		/* request */
	memcpy(f + o + 8, guest_mac, 6);
	put32(f + o + 14, IP(10, 0, 2, 15));
	memset(f + o + 18, 0, 6);
	put32(f + o + 24, IP(10, 0, 2, 2));
	assert_int_equal(mvm_slirp_send(fx->s, f, sizeof(f)), 0);

	i = wait_frame(&fx->k, is_arp_reply, NULL);
	assert_true(i >= 0);
	r = fx->k.frames[i];
	assert_memory_equal(r, guest_mac, 6);		/* to us */
	assert_memory_equal(r + 22, r + 6, 6);		/* sender MAC = source MAC */
	assert_int_equal(r[28], 10);			/* sender IP 10.0.2.2 */
	assert_int_equal(r[29], 0);
	assert_int_equal(r[30], 2);
	assert_int_equal(r[31], 2);
	assert_memory_equal(r + 32, guest_mac, 6);	/* target: us */
	assert_int_equal(r[38], 10);
	assert_int_equal(r[41], 15);
	memcpy(fx->gw_mac, r + 6, 6);
}

static int setup_cfg(void **state, const struct mvm_slirp_cfg *cfg)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	pthread_mutex_init(&fx->k.lock, NULL);
	pthread_cond_init(&fx->k.cond, NULL);
	fx->s = mvm_slirp_new(cfg, sink_rx, &fx->k);
	if (!fx->s)
		return -1;
	*state = fx;
	return 0;
}

/* The defaults: 10.0.2.2 is not the host's loopback. */
static int setup(void **state)
{
	return setup_cfg(state, NULL);
}

/* With the host-loopback mapping (microvm up/run --net-host-loopback). */
static int setup_loopback(void **state)
{
	struct mvm_slirp_cfg cfg;

	mvm_slirp_cfg_init(&cfg);
	cfg.host_loopback = true;
	return setup_cfg(state, &cfg);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	size_t i;

	mvm_slirp_free(fx->s);
	for (i = 0; i < fx->k.n; i++)
		free(fx->k.frames[i]);
	free(fx);
	return 0;
}

static void test_arp_gateway(void **state)
{
	arp_gateway(*state);
}

static int is_echo_reply(const uint8_t *f, size_t len, void *arg)
{
	(void)arg;
	return len >= 14 + 20 + 8 && get16(f + 12) == 0x0800 && f[14 + 9] == 1 &&
	       f[34] == 0 /* echo reply */;
}

static void test_icmp_echo_gateway(void **state)
{
	struct fixture *fx = *state;
	uint8_t f[14 + 20 + 8 + 16];
	uint8_t *icmp = f + 34;
	const uint8_t *r;
	size_t o;
	int i;

	arp_gateway(fx);
	o = eth_hdr(f, fx->gw_mac, 0x0800);
	o += ip_hdr(f + o, 1, IP(10, 0, 2, 15), IP(10, 0, 2, 2), 8 + 16);
	memset(icmp, 0, 8);
	icmp[0] = 8;			/* echo request */
	put16(icmp + 4, 0x1234);	/* id */
	put16(icmp + 6, 7);		/* seq */
	memcpy(icmp + 8, "microvm-ping-123", 16);
	put16(icmp + 2, csum(icmp, 8 + 16));
	assert_int_equal(mvm_slirp_send(fx->s, f, sizeof(f)), 0);

	i = wait_frame(&fx->k, is_echo_reply, NULL);
	assert_true(i >= 0);
	r = fx->k.frames[i];
	assert_memory_equal(r, guest_mac, 6);
	assert_int_equal(get16(r + 14 + 12), 0x0a00);	/* from 10.0.2.2 */
	assert_int_equal(get16(r + 14 + 14), 0x0202);
	assert_int_equal(get16(r + 34 + 4), 0x1234);
	assert_int_equal(get16(r + 34 + 6), 7);
	assert_memory_equal(r + 42, "microvm-ping-123", 16);
	assert_int_equal(csum(r + 14, 20), 0);		/* valid IP checksum */
}

static int is_dhcp_offer(const uint8_t *f, size_t len, void *arg)
{
	(void)arg;
	return len >= 14 + 20 + 8 + 240 && get16(f + 12) == 0x0800 && f[14 + 9] == 17 &&
	       get16(f + 34) == 67 && get16(f + 36) == 68;
}

static void test_dhcp_offer(void **state)
{
	struct fixture *fx = *state;
	uint8_t f[14 + 20 + 8 + 300];
	uint8_t *udp = f + 34, *bp = f + 42;
	const uint8_t *r, *opt, *end;
	size_t o;
	int i, type = -1;

	memset(f, 0, sizeof(f));
	o = eth_hdr(f, bcast_mac, 0x0800);
	ip_hdr(f + o, 17, 0, IP(255, 255, 255, 255), 8 + 300);
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, 8 + 300);	/* checksum 0: none */
	bp[0] = 1;			/* BOOTREQUEST */
	bp[1] = 1;
	bp[2] = 6;
	put32(bp + 4, 0xc0ffee);	/* xid */
	memcpy(bp + 28, guest_mac, 6);
	put32(bp + 236, 0x63825363);	/* magic cookie */
	bp[240] = 53;			/* DHCP message type */
	bp[241] = 1;
	bp[242] = 1;			/* DISCOVER */
	bp[243] = 255;
	assert_int_equal(mvm_slirp_send(fx->s, f, sizeof(f)), 0);

	i = wait_frame(&fx->k, is_dhcp_offer, NULL);
	assert_true(i >= 0);
	r = fx->k.frames[i];
	bp = (uint8_t *)r + 42;
	assert_int_equal(bp[0], 2);			/* BOOTREPLY */
	assert_int_equal(get16(bp + 4), 0x00c0);	/* our xid */
	assert_int_equal(get16(bp + 6), 0xffee);
	assert_int_equal(bp[16], 10);			/* yiaddr 10.0.2.15 */
	assert_int_equal(bp[17], 0);
	assert_int_equal(bp[18], 2);
	assert_int_equal(bp[19], 15);
	opt = bp + 240;
	end = r + fx->k.lens[i];
	while (opt + 2 <= end && *opt != 255) {
		if (*opt == 0) {
			opt++;
			continue;
		}
		if (opt[0] == 53 && opt[1] == 1 && opt + 3 <= end)
			type = opt[2];
		opt += 2 + opt[1];
	}
	assert_int_equal(type, 2);			/* OFFER */
}

struct syn_want {
	uint16_t port;
};

static int is_syn_to(const uint8_t *f, size_t len, void *arg)
{
	const struct syn_want *w = arg;

	return len >= 14 + 20 + 20 && get16(f + 12) == 0x0800 && f[14 + 9] == 6 &&
	       get16(f + 14 + 16) == 0x0a00 && get16(f + 14 + 18) == 0x020f &&
	       get16(f + 34 + 2) == w->port && (f[34 + 13] & 0x12) == 0x02;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_hostfwd_syn(void **state)
{
	struct fixture *fx = *state;
	struct mvm_slirp_fwd fwd = { .host_port = free_port(), .guest_port = 2222 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct syn_want w = { .port = 2222 };
	int fd;

	arp_gateway(fx);
	assert_int_equal(mvm_slirp_add_fwd(fx->s, &fwd), 0);
	/* The same host port twice cannot be bound. */
	assert_int_equal(mvm_slirp_add_fwd(fx->s, &fwd), -EADDRINUSE);

	a.sin_port = htons(fwd.host_port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(wait_frame(&fx->k, is_syn_to, &w) >= 0);
	close(fd);
}

struct udp_want {
	uint16_t sport;
	uint16_t dport;
};

static int is_udp_reply(const uint8_t *f, size_t len, void *arg)
{
	const struct udp_want *w = arg;

	return len >= 14 + 20 + 8 && get16(f + 12) == 0x0800 && f[14 + 9] == 17 &&
	       get16(f + 34) == w->sport && get16(f + 36) == w->dport;
}

/* With host_loopback, UDP out: a datagram to 10.0.2.2 reaches the host's 127.0.0.1, and the
 * host's answer comes back to the guest from 10.0.2.2. */
static void test_udp_to_host_and_back(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in from;
	socklen_t al = sizeof(a), fl = sizeof(from);
	uint8_t f[14 + 20 + 8 + 5], buf[64];
	struct udp_want w;
	struct timeval tv = { 3, 0 };
	const uint8_t *r;
	ssize_t n;
	int fd, i;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	arp_gateway(fx);
	eth_hdr(f, fx->gw_mac, 0x0800);
	ip_hdr(f + 14, 17, IP(10, 0, 2, 15), IP(10, 0, 2, 2), 8 + 5);
	put16(f + 34, 40000);			/* guest port */
	put16(f + 36, ntohs(a.sin_port));
	put16(f + 38, 8 + 5);
	put16(f + 40, 0);			/* no checksum */
	memcpy(f + 42, "hello", 5);
	assert_int_equal(mvm_slirp_send(fx->s, f, sizeof(f)), 0);

	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(sendto(fd, "world!", 6, 0, (struct sockaddr *)&from, fl), 6);

	w.sport = ntohs(a.sin_port);
	w.dport = 40000;
	i = wait_frame(&fx->k, is_udp_reply, &w);
	assert_true(i >= 0);
	r = fx->k.frames[i];
	assert_memory_equal(r, guest_mac, 6);
	assert_int_equal(get16(r + 14 + 12), 0x0a00);	/* from 10.0.2.2 */
	assert_int_equal(get16(r + 14 + 14), 0x0202);
	assert_int_equal(get16(r + 38), 8 + 6);
	assert_memory_equal(r + 42, "world!", 6);
	close(fd);
}

/* A TCP SYN from the guest (10.0.2.15:@sport) to 10.0.2.2:@dport. */
static void send_syn_to_gateway(struct fixture *fx, uint16_t sport, uint16_t dport)
{
	uint8_t f[14 + 20 + 20], ph[12 + 20];

	arp_gateway(fx);
	eth_hdr(f, fx->gw_mac, 0x0800);
	ip_hdr(f + 14, 6, IP(10, 0, 2, 15), IP(10, 0, 2, 2), 20);
	memset(f + 34, 0, 20);
	put16(f + 34, sport);
	put16(f + 36, dport);
	put32(f + 38, 1000);			/* sequence number */
	f[46] = 5 << 4;				/* header length: 5 words */
	f[47] = 0x02;				/* SYN */
	put16(f + 48, 65535);			/* window */
	/* checksum over the pseudo header and the TCP header */
	memcpy(ph, f + 14 + 12, 8);		/* source and destination address */
	ph[8] = 0;
	ph[9] = 6;
	put16(ph + 10, 20);
	memcpy(ph + 12, f + 34, 20);
	put16(f + 50, csum(ph, sizeof(ph)));
	assert_int_equal(mvm_slirp_send(fx->s, f, sizeof(f)), 0);
}

/* A host listener on 127.0.0.1; its port in @port. */
static int loopback_listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* By default a guest connection to 10.0.2.2:PORT never reaches the host's 127.0.0.1:PORT
 * (the finding: it reached every host-local service, our SOCKS server included), and a
 * datagram to 10.0.2.2 does not arrive either. */
static void test_no_host_loopback_by_default(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct pollfd pfd = { .events = POLLIN };
	uint8_t f[14 + 20 + 8 + 5];
	uint16_t port;
	int ufd;

	pfd.fd = loopback_listener(&port);
	send_syn_to_gateway(fx, 40001, port);
	assert_int_equal(poll(&pfd, 1, 1000), 0);	/* nobody knocked */
	close(pfd.fd);

	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(ufd >= 0);
	assert_int_equal(bind(ufd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(ufd, (struct sockaddr *)&a, &al), 0);
	eth_hdr(f, fx->gw_mac, 0x0800);
	ip_hdr(f + 14, 17, IP(10, 0, 2, 15), IP(10, 0, 2, 2), 8 + 5);
	put16(f + 34, 40000);
	put16(f + 36, ntohs(a.sin_port));
	put16(f + 38, 8 + 5);
	put16(f + 40, 0);
	memcpy(f + 42, "hello", 5);
	assert_int_equal(mvm_slirp_send(fx->s, f, sizeof(f)), 0);
	pfd.fd = ufd;
	assert_int_equal(poll(&pfd, 1, 1000), 0);
	close(ufd);
}

/* With host_loopback the same SYN becomes a connection to the host's 127.0.0.1:PORT. */
static void test_host_loopback_when_asked(void **state)
{
	struct fixture *fx = *state;
	struct pollfd pfd = { .events = POLLIN };
	uint16_t port;
	int c;

	pfd.fd = loopback_listener(&port);
	send_syn_to_gateway(fx, 40002, port);
	assert_int_equal(poll(&pfd, 1, 3000), 1);
	c = accept(pfd.fd, NULL, NULL);
	assert_true(c >= 0);
	close(c);
	close(pfd.fd);
}

static void test_bad_frames(void **state)
{
	struct fixture *fx = *state;
	uint8_t big[1500 + 18 + 1];
	uint8_t f[64];
	unsigned int i, j;

	memset(big, 0, sizeof(big));
	assert_int_equal(mvm_slirp_send(fx->s, big, 13), -EMSGSIZE);
	assert_int_equal(mvm_slirp_send(fx->s, big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(mvm_slirp_send(fx->s, big, sizeof(big) - 1), 0);

	/* Truncated and garbage IPv4/ARP frames must not crash the stack. */
	srand(42);
	for (i = 0; i < 200; i++) {
		for (j = 0; j < sizeof(f); j++)
			f[j] = (uint8_t)rand();
		eth_hdr(f, bcast_mac, (i & 1) ? 0x0800 : 0x0806);
		if (i & 1)
			f[14] = 0x45;
		mvm_slirp_send(fx->s, f, 14 + i % (sizeof(f) - 14));
	}
	/* ... and it still answers. */
	arp_gateway(fx);
}

/* A frame descriptor served by the slirp thread itself (how the namespace backend's TAP is). */
static void test_frame_fd(void **state)
{
	uint8_t req[42], resp[2048];
	struct mvm_slirp *s;
	struct pollfd p;
	size_t o;
	ssize_t n;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	s = mvm_slirp_new_fd(NULL, sv[1]);
	assert_non_null(s);
	o = eth_hdr(req, bcast_mac, 0x0806);
	put16(req + o, 1);
	put16(req + o + 2, 0x0800);
	req[o + 4] = 6;
	req[o + 5] = 4;
	put16(req + o + 6, 1);
	memcpy(req + o + 8, guest_mac, 6);
	put32(req + o + 14, IP(10, 0, 2, 15));
	memset(req + o + 18, 0, 6);
	put32(req + o + 24, IP(10, 0, 2, 3));		/* the DNS address answers ARP too */
	assert_int_equal(write(sv[0], req, sizeof(req)), (ssize_t)sizeof(req));
	p.fd = sv[0];
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 3000), 1);
	n = read(sv[0], resp, sizeof(resp));
	assert_true(n >= 42);
	assert_true(is_arp_reply(resp, (size_t)n, NULL));
	assert_memory_equal(resp, guest_mac, 6);
	assert_int_equal(get16(resp + 28), 0x0a00);	/* sender 10.0.2.3 */
	assert_int_equal(get16(resp + 30), 0x0203);
	mvm_slirp_free(s);
	close(sv[0]);
	close(sv[1]);
	assert_null(mvm_slirp_new_fd(NULL, -1));
}

/* ICMPv6 checksum: pseudo-header (src, dst, length, next header 58) plus the message. */
static uint16_t icmp6_csum(const uint8_t *ip6, const uint8_t *msg, size_t len)
{
	uint8_t buf[40 + 256];

	memcpy(buf, ip6 + 8, 32);
	put32(buf + 32, (uint32_t)len);
	put32(buf + 36, 58);
	memcpy(buf + 40, msg, len);
	return csum(buf, 40 + len);
}

/* An IPv6 frame to @dst carrying the ICMPv6 message @msg (checksum filled in). */
static size_t ip6_frame(uint8_t *f, const uint8_t *dmac, const uint8_t *src, const uint8_t *dst,
			uint8_t *msg, size_t len)
{
	uint8_t *ip6 = f + 14;

	eth_hdr(f, dmac, 0x86dd);
	memset(ip6, 0, 40);
	ip6[0] = 0x60;
	put16(ip6 + 4, (uint16_t)len);
	ip6[6] = 58;
	ip6[7] = 255;
	memcpy(ip6 + 8, src, 16);
	memcpy(ip6 + 24, dst, 16);
	put16(msg + 2, 0);
	put16(msg + 2, icmp6_csum(ip6, msg, len));
	memcpy(ip6 + 40, msg, len);
	return 14 + 40 + len;
}

static int is_icmp6_type(const uint8_t *f, size_t len, void *arg)
{
	return len >= 14 + 40 + 8 && get16(f + 12) == 0x86dd && f[14 + 6] == 58 &&
	       f[54] == *(const uint8_t *)arg;
}

/* With IPv6 on: neighbour discovery for the gateway fec0::2, then an echo to it. */
static void test_ipv6_ndp_and_echo(void **state)
{
	struct fixture *fx = *state;
	struct mvm_slirp_cfg cfg;
	uint8_t me[16], gw[16], snm[16], f[200], msg[64], mac[6], want;
	const uint8_t mcast_mac[6] = { 0x33, 0x33, 0xff, 0x00, 0x00, 0x02 };
	const uint8_t *r;
	int i;

	mvm_slirp_free(fx->s);
	mvm_slirp_cfg_init(&cfg);
	cfg.ipv6 = true;
	fx->s = mvm_slirp_new(&cfg, sink_rx, &fx->k);
	assert_non_null(fx->s);
	inet_pton(AF_INET6, "fec0::5054:ff:fe12:3456", me);
	inet_pton(AF_INET6, "fec0::2", gw);
	inet_pton(AF_INET6, "ff02::1:ff00:2", snm);	/* solicited-node multicast of fec0::2 */

	/* Neighbour solicitation: type 135, target fec0::2, our link-layer address. */
	memset(msg, 0, 32);
	msg[0] = 135;
	memcpy(msg + 8, gw, 16);
	msg[24] = 1;		/* source link-layer address option, 8 bytes */
	msg[25] = 1;
	memcpy(msg + 26, guest_mac, 6);
	assert_int_equal(mvm_slirp_send(fx->s, f, ip6_frame(f, mcast_mac, me, snm, msg, 32)), 0);
	want = 136;		/* neighbour advertisement */
	i = wait_frame(&fx->k, is_icmp6_type, &want);
	assert_true(i >= 0);
	r = fx->k.frames[i];
	assert_memory_equal(r, guest_mac, 6);
	assert_memory_equal(r + 14 + 8, gw, 16);		/* from fec0::2 */
	assert_memory_equal(r + 54 + 8, gw, 16);		/* about fec0::2 */
	memcpy(mac, r + 6, 6);

	/* Echo request to the gateway: type 128, answered with 129 and the same payload. */
	memset(msg, 0, 24);
	msg[0] = 128;
	put16(msg + 4, 0x4242);
	put16(msg + 6, 1);
	memcpy(msg + 8, "microvm-ipv6-pin", 16);
	assert_int_equal(mvm_slirp_send(fx->s, f, ip6_frame(f, mac, me, gw, msg, 24)), 0);
	want = 129;
	i = wait_frame(&fx->k, is_icmp6_type, &want);
	assert_true(i >= 0);
	r = fx->k.frames[i];
	assert_memory_equal(r + 14 + 24, me, 16);		/* to us */
	assert_int_equal(get16(r + 54 + 4), 0x4242);
	assert_memory_equal(r + 54 + 8, "microvm-ipv6-pin", 16);
}

static void test_bad_config(void **state)
{
	struct mvm_slirp_cfg cfg;

	(void)state;
	mvm_slirp_cfg_init(&cfg);
	cfg.mtu = 100;
	assert_null(mvm_slirp_new(&cfg, sink_rx, NULL));
	assert_non_null(strstr(mvm_last_error(), "MTU"));
	assert_null(mvm_slirp_new(NULL, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_arp_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_echo_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dhcp_offer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostfwd_syn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_to_host_and_back, setup_loopback, teardown),
		cmocka_unit_test_setup_teardown(test_no_host_loopback_by_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_loopback_when_asked, setup_loopback,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_ndp_and_echo, setup, teardown),
		cmocka_unit_test(test_frame_fd),
		cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
