/* SPDX-License-Identifier: MIT */
/*
 * vsock_guest.c - a freestanding x86_64 test guest for the virtio-vsock device (test code).
 *
 * Booted by the KVM backend like a vmlinux: an ELF64 loaded at 1 MiB, entered in 64-bit mode
 * with paging (identity map of the low 4 GiB) and %rsi pointing to boot_params, whose
 * cmd_line_ptr gives the command line.  Ring 0 only, interrupts off, no libc: it finds the
 * vsock device from the `virtio_mmio.device=` tokens, drives it by polling the used rings,
 * prints to the serial port 0x3f8, and serves
 *
 *	1025  newline JSON: {"cmd":"ping"} -> {"status":"pong"}
 *	1026  echo (until the host shuts its side; then we close ours)
 *	1027  sink: counts bytes until the host shuts its side, then answers "<count>\n"
 *	1028  source: reads "<n>\n", sends n bytes (byte i = i * 7 mod 256), then closes
 *
 * and opens one connection to host port `vsockguest.connect=N` (default 9000) at start,
 * sending "hello from guest cid <cid>\n" (retried for a while if the host refuses).
 *
 * With `testguest.net=1` on the command line it first drives the virtio-net device (DeviceID
 * 1): it sends an ARP request for the gateway 10.0.2.2 from 10.0.2.15 with the MAC from the
 * device's config space, polls the RX used ring for the reply (resending now and then, giving
 * up after a bounded number of TSC ticks) and prints `net: arp reply 10.0.2.2 is at <mac>` or
 * `net: no reply` (`net: no virtio-net device` if there is none), then goes on with vsock.
 *
 * Credit: we advertise CONN_BUF bytes per connection.  The echo port keeps what it could not
 * send back yet in that buffer (so the host can never overrun it); the other ports consume at
 * once.  fwd_cnt counts consumed bytes and rides on every header; a CREDIT_UPDATE goes out
 * when a quarter of the buffer was consumed silently.  We never send more than the host's
 * advertised credit.
 */
#include <stddef.h>
#include <stdint.h>

#define COM1		0x3f8
#define QSZ		64		/* entries per queue */
#define RX_BUF		(44 + 65536)
#define TX_SMALL	(44 + 256)	/* header plus payloads small enough to copy */
#define CONN_BUF	(256 * 1024)
#define MAX_CONNS	128
#define HOST_CID	2
#ifndef SPIN
#define SPIN		2000
#endif
#define SINK_ALLOC	(1u << 20)	/* ports that consume at once may promise more */

/* virtio-mmio v2 registers */
#define R_MAGIC		0x000
#define R_VERSION	0x004
#define R_DEVICE_ID	0x008
#define R_DEV_FEAT	0x010
#define R_DEV_FEAT_SEL	0x014
#define R_DRV_FEAT	0x020
#define R_DRV_FEAT_SEL	0x024
#define R_QUEUE_SEL	0x030
#define R_QUEUE_NUM_MAX	0x034
#define R_QUEUE_NUM	0x038
#define R_QUEUE_READY	0x044
#define R_QUEUE_NOTIFY	0x050
#define R_STATUS	0x070
#define R_DESC_LO	0x080
#define R_DESC_HI	0x084
#define R_AVAIL_LO	0x090
#define R_AVAIL_HI	0x094
#define R_USED_LO	0x0a0
#define R_USED_HI	0x0a4
#define R_CONFIG	0x100

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE,
       OP_CREDIT_REQUEST };

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct avail {
	uint16_t flags, idx, ring[QSZ], used_event;
};

struct used {
	uint16_t flags, idx;
	struct { uint32_t id, len; } ring[QSZ];
	uint16_t avail_event;
};

struct vq {
	struct desc desc[QSZ] __attribute__((aligned(16)));
	struct avail avail __attribute__((aligned(2)));
	struct used used __attribute__((aligned(4)));
	uint16_t last_used;
};

enum cstate { C_FREE, C_CONNECTING, C_OPEN };

struct conn {
	enum cstate state;
	uint32_t lport, pport;
	uint32_t peer_shut;		/* SHUTDOWN flags from the host */
	int closed;			/* we sent SHUTDOWN(both) */
	uint32_t fwd_cnt, fwd_told;	/* consumed by us / last advertised */
	uint32_t tx_cnt;		/* sent to the host */
	uint32_t peer_alloc, peer_fwd;
	uint8_t buf[CONN_BUF];		/* echo backlog, or the current line */
	uint32_t head, len;
	uint64_t count;			/* sink: bytes, source: bytes left */
	int source_started;
};

static struct vq rxq __attribute__((aligned(4096)));
static struct vq txq __attribute__((aligned(4096)));
static struct vq evq __attribute__((aligned(4096)));
static uint8_t rx_bufs[QSZ][RX_BUF] __attribute__((aligned(16)));
static uint8_t tx_bufs[QSZ][TX_SMALL] __attribute__((aligned(16)));
static uint16_t tx_free[QSZ], tx_nfree;
static int tx_hold[QSZ];	/* RX buffer to give back when this TX chain completes */
static int cur_rx = -1, rx_held;	/* the RX buffer being handled; kept by a zero-copy echo */
static struct conn conns[MAX_CONNS];
static volatile uint8_t *mmio;
static uint64_t guest_cid;
static int dev_irq = -1;		/* legacy PIC line of the device, -1: poll */
static uint32_t connect_port = 9000;
uint8_t guest_stack[65536] __attribute__((aligned(16), used));

/* ---- freestanding basics ---- */

void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void guest_main(const uint8_t *boot_params);

void *memcpy(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	uint8_t *dd = d;
	const uint8_t *ss = s;

	if (dd < ss)
		return memcpy(d, s, n);
	while (n--)
		dd[n] = ss[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	void *r = d;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

static void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static void puts_(const char *s)
{
	while (*s)
		outb(COM1, (uint8_t)*s++);
}

static void putu(uint64_t v)
{
	char b[24];
	int i = 23;

	b[i] = 0;
	do
		b[--i] = (char)('0' + v % 10);
	while (v /= 10);
	puts_(b + i);
}

static size_t fmtu(char *out, uint64_t v)
{
	char b[24];
	int i = 24;
	size_t n = 0;

	do
		b[--i] = (char)('0' + v % 10);
	while (v /= 10);
	while (i < 24)
		out[n++] = b[i++];
	return n;
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static void barrier(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

static uint32_t rd(uint32_t off)
{
	return *(volatile uint32_t *)(mmio + off);
}

static void wr(uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(mmio + off) = v;
}

/* ---- interrupts: the legacy PIC wakes us from hlt; the handler only acknowledges ---- */

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
void irq_entry(void);
void irq_handler(void);

void irq_handler(void)
{
	uint32_t isr = rd(0x060);	/* InterruptStatus */

	wr(0x064, isr);			/* InterruptACK: the line drops */
	outb(0x20, 0x20);		/* PIC EOI */
}

__asm__(".text\n"
	".globl irq_entry\n"
	"irq_entry:\n"
	"	push %rax\n push %rcx\n push %rdx\n push %rsi\n push %rdi\n"
	"	push %r8\n push %r9\n push %r10\n push %r11\n"
	"	call irq_handler\n"
	"	pop %r11\n pop %r10\n pop %r9\n pop %r8\n"
	"	pop %rdi\n pop %rsi\n pop %rdx\n pop %rcx\n pop %rax\n"
	"	iretq\n");

/** irq_setup() - IDT gates for the PIC vectors, PIC remapped to 0x20, only our line open */
static void irq_setup(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = {
		sizeof(idt) - 1, (uintptr_t)idt,
	};
	uint64_t h = (uintptr_t)irq_entry;
	uint16_t cs;

	if (dev_irq < 0 || dev_irq > 7)
		return;		/* only the master PIC here: fall back to polling */
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	for (int v = 0x20; v < 0x30; v++)
		idt[v] = (struct idt_gate){ .off_lo = (uint16_t)h, .sel = cs, .type = 0x8e,
					    .off_mid = (uint16_t)(h >> 16),
					    .off_hi = (uint32_t)(h >> 32) };
	__asm__ volatile("lidt %0" : : "m"(idtr));
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, (uint8_t)~(1u << dev_irq));
	outb(0xa1, 0xff);
}

/** wait_used() - sleep until @q has a used entry we have not seen (or an interrupt) */
static void wait_used(struct vq *q)
{
	if (dev_irq < 0 || dev_irq > 7) {
		__asm__ volatile("pause");
		return;
	}
	for (int i = 0; i < SPIN; i++) {	/* a short spin first: waking from hlt is slow */
		if (q->last_used != *(volatile uint16_t *)&q->used.idx)
			return;
		__asm__ volatile("pause");
	}
	__asm__ volatile("cli" : : : "memory");
	if (q->last_used == *(volatile uint16_t *)&q->used.idx)
		__asm__ volatile("sti; hlt" : : : "memory");	/* no lost wake-up: sti shadow */
	__asm__ volatile("sti" : : : "memory");
}

/* ---- boot: find the vsock device ---- */

static uint64_t parse_hex(const char *s, const char **end)
{
	uint64_t v = 0;

	for (;; s++) {
		char c = *s;

		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (uint64_t)(c - 'A' + 10);
		else
			break;
	}
	*end = s;
	return v;
}

static int starts(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

/** find_vsock() - the first virtio_mmio.device= whose DeviceID is 19 */
static int find_vsock(const char *cmdline)
{
	const char *p = cmdline, *e;

	for (; *p; p++) {
		if (p != cmdline && p[-1] != ' ')
			continue;
		if (starts(p, "vsockguest.connect=")) {
			uint32_t v = 0;

			for (e = p + 19; *e >= '0' && *e <= '9'; e++)
				v = v * 10 + (uint32_t)(*e - '0');
			connect_port = v;
		}
		if (!starts(p, "virtio_mmio.device="))
			continue;
		while (*p && *p != '@' && *p != ' ')
			p++;
		if (*p != '@' || !starts(p, "@0x"))
			continue;
		mmio = (volatile uint8_t *)(uintptr_t)parse_hex(p + 3, &e);
		dev_irq = -1;
		if (*e == ':' && e[1] >= '0' && e[1] <= '9') {
			dev_irq = e[1] - '0';
			if (e[2] >= '0' && e[2] <= '9')
				dev_irq = dev_irq * 10 + e[2] - '0';
		}
		if (rd(R_MAGIC) == 0x74726976 && rd(R_VERSION) == 2 && rd(R_DEVICE_ID) == 19) {
			puts_("vsock-guest: found the vsock device\n");
			return 0;
		}
		mmio = NULL;
	}
	return -1;
}

static size_t strlen_(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static void setup_queue(uint32_t idx, struct vq *q, uint16_t n)
{
	uint64_t d = (uintptr_t)q->desc, a = (uintptr_t)&q->avail, u = (uintptr_t)&q->used;

	wr(R_QUEUE_SEL, idx);
	wr(R_QUEUE_NUM, n);
	wr(R_DESC_LO, (uint32_t)d);
	wr(R_DESC_HI, (uint32_t)(d >> 32));
	wr(R_AVAIL_LO, (uint32_t)a);
	wr(R_AVAIL_HI, (uint32_t)(a >> 32));
	wr(R_USED_LO, (uint32_t)u);
	wr(R_USED_HI, (uint32_t)(u >> 32));
	q->avail.flags = 0;	/* interrupts wake us from hlt */
	wr(R_QUEUE_READY, 1);
}

static int init_device(void)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, 1);
	wr(R_STATUS, 1 | 2);
	wr(R_DEV_FEAT_SEL, 1);
	if (!(rd(R_DEV_FEAT) & 1))	/* VIRTIO_F_VERSION_1 */
		return -1;
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, 1);
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, 0);
	wr(R_STATUS, 1 | 2 | 8);
	if (!(rd(R_STATUS) & 8))
		return -1;
	if (rd(R_QUEUE_NUM_MAX) < QSZ)
		return -1;
	setup_queue(0, &rxq, QSZ);
	setup_queue(1, &txq, QSZ);
	setup_queue(2, &evq, QSZ);
	guest_cid = rd(R_CONFIG) | (uint64_t)rd(R_CONFIG + 4) << 32;
	for (uint16_t i = 0; i < QSZ; i++) {
		rxq.desc[i].addr = (uintptr_t)rx_bufs[i];
		rxq.desc[i].len = RX_BUF;
		rxq.desc[i].flags = 2;	/* VRING_DESC_F_WRITE */
		rxq.avail.ring[i] = i;
		tx_free[tx_nfree++] = i;
		tx_hold[i] = -1;
	}
	barrier();
	rxq.avail.idx = QSZ;
	wr(R_STATUS, 1 | 2 | 8 | 4);
	wr(R_QUEUE_NOTIFY, 0);
	return 0;
}

/* ---- virtio-net (testguest.net=1): one ARP request to the gateway ---- */

#define NET_QSZ		16
#define NET_BUF		2048		/* 12-byte virtio_net_hdr_v1 + a 1514-byte frame */
#define NET_HDR		12

static struct vq net_rxq __attribute__((aligned(4096)));
static struct vq net_txq __attribute__((aligned(4096)));
static uint8_t net_rx_bufs[NET_QSZ][NET_BUF] __attribute__((aligned(16)));
static uint8_t net_tx_buf[NET_BUF] __attribute__((aligned(16)));
static uint8_t net_mac[6];
static const uint8_t net_ip[4] = { 10, 0, 2, 15 }, net_gw[4] = { 10, 0, 2, 2 };

static void puthex8(uint8_t v)
{
	static const char hex[] = "0123456789abcdef";

	outb(COM1, (uint8_t)hex[v >> 4]);
	outb(COM1, (uint8_t)hex[v & 15]);
}

static void putmac(const uint8_t *m)
{
	for (int i = 0; i < 6; i++) {
		if (i)
			outb(COM1, ':');
		puthex8(m[i]);
	}
}

/** find_dev() - point mmio at the first virtio_mmio.device= whose DeviceID is @id */
static int find_dev(const char *cmdline, uint32_t id)
{
	const char *p = cmdline, *e;

	for (; *p; p++) {
		if ((p != cmdline && p[-1] != ' ') || !starts(p, "virtio_mmio.device="))
			continue;
		while (*p && *p != '@' && *p != ' ')
			p++;
		if (!starts(p, "@0x"))
			continue;
		mmio = (volatile uint8_t *)(uintptr_t)parse_hex(p + 3, &e);
		if (rd(R_MAGIC) == 0x74726976 && rd(R_VERSION) == 2 && rd(R_DEVICE_ID) == id)
			return 0;
		mmio = NULL;
	}
	return -1;
}

/** net_init() - VERSION_1 (+ MAC, STATUS if offered), RX and TX queues, RX buffers posted */
static int net_init(void)
{
	uint32_t lo;

	wr(R_STATUS, 0);
	wr(R_STATUS, 1);
	wr(R_STATUS, 1 | 2);
	wr(R_DEV_FEAT_SEL, 1);
	if (!(rd(R_DEV_FEAT) & 1))	/* VIRTIO_F_VERSION_1 */
		return -1;
	wr(R_DEV_FEAT_SEL, 0);
	lo = rd(R_DEV_FEAT) & ((1u << 5) | (1u << 16));	/* VIRTIO_NET_F_MAC, _STATUS */
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, 1);
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, lo);
	wr(R_STATUS, 1 | 2 | 8);
	if (!(rd(R_STATUS) & 8) || rd(R_QUEUE_NUM_MAX) < NET_QSZ)
		return -1;
	for (int i = 0; i < 6; i++)
		net_mac[i] = *(volatile uint8_t *)(mmio + R_CONFIG + i);
	setup_queue(0, &net_rxq, NET_QSZ);
	setup_queue(1, &net_txq, NET_QSZ);
	for (uint16_t i = 0; i < NET_QSZ; i++) {
		net_rxq.desc[i].addr = (uintptr_t)net_rx_bufs[i];
		net_rxq.desc[i].len = NET_BUF;
		net_rxq.desc[i].flags = 2;	/* VRING_DESC_F_WRITE */
		net_rxq.avail.ring[i] = i;
	}
	barrier();
	net_rxq.avail.idx = NET_QSZ;
	wr(R_STATUS, 1 | 2 | 8 | 4);
	wr(R_QUEUE_NOTIFY, 0);
	return 0;
}

/** net_send_arp() - broadcast "who has 10.0.2.2? tell 10.0.2.15" (one descriptor) */
static void net_send_arp(void)
{
	uint8_t *f = net_tx_buf + NET_HDR;
	uint16_t slot = net_txq.avail.idx % NET_QSZ;

	memset(net_tx_buf, 0, NET_HDR + 60);
	memset(f, 0xff, 6);			/* Ethernet: broadcast */
	memcpy(f + 6, net_mac, 6);
	f[12] = 0x08; f[13] = 0x06;		/* ARP */
	f[14] = 0; f[15] = 1;			/* htype Ethernet */
	f[16] = 0x08; f[17] = 0x00;		/* ptype IPv4 */
	f[18] = 6; f[19] = 4;
	f[20] = 0; f[21] = 1;			/* request */
	memcpy(f + 22, net_mac, 6);
	memcpy(f + 28, net_ip, 4);
	memcpy(f + 38, net_gw, 4);		/* target MAC (32..37) stays zero */
	net_txq.desc[slot].addr = (uintptr_t)net_tx_buf;
	net_txq.desc[slot].len = NET_HDR + 60;	/* padded to the Ethernet minimum */
	net_txq.desc[slot].flags = 0;
	net_txq.avail.ring[slot] = slot;
	barrier();
	net_txq.avail.idx++;
	barrier();
	wr(R_QUEUE_NOTIFY, 1);
}

/** net_arp_reply() - is this received frame the gateway's ARP reply to us? */
static int net_arp_reply(const uint8_t *f, uint32_t len)
{
	return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 &&
	       !memcmp(f + 28, net_gw, 4) && !memcmp(f + 38, net_ip, 4) &&
	       !memcmp(f + 32, net_mac, 6);
}

/** net_test() - ARP for the gateway, wait (bounded) for the reply, print the outcome */
static void net_test(const char *cmdline)
{
	const uint64_t resend = 500000000ull, give_up = 20000000000ull;	/* TSC ticks */
	uint64_t start, next;

	if (find_dev(cmdline, 1) || net_init()) {
		puts_("net: no virtio-net device\n");
		mmio = NULL;
		return;
	}
	puts_("net: virtio-net mac ");
	putmac(net_mac);
	puts_("\n");
	start = rdtsc();
	next = start;
	for (;;) {
		uint64_t now = rdtsc();

		if (now - start > give_up) {
			puts_("net: no reply\n");
			break;
		}
		if (now >= next) {
			net_send_arp();
			next = now + resend;
		}
		if (net_rxq.last_used == *(volatile uint16_t *)&net_rxq.used.idx) {
			__asm__ volatile("pause");
			continue;
		}
		barrier();
		{
			uint32_t id = net_rxq.used.ring[net_rxq.last_used % NET_QSZ].id;
			uint32_t len = net_rxq.used.ring[net_rxq.last_used % NET_QSZ].len;
			int hit;

			net_rxq.last_used++;
			if (id >= NET_QSZ)
				continue;
			hit = len > NET_HDR && len <= NET_BUF &&
			      net_arp_reply(net_rx_bufs[id] + NET_HDR, len - NET_HDR);
			if (hit) {
				puts_("net: arp reply 10.0.2.2 is at ");
				putmac(net_rx_bufs[id] + NET_HDR + 22);
				puts_("\n");
			}
			net_rxq.avail.ring[net_rxq.avail.idx % NET_QSZ] = (uint16_t)id;
			barrier();
			net_rxq.avail.idx++;
			wr(R_QUEUE_NOTIFY, 0);
			if (hit)
				break;
		}
	}
	wr(0x064, rd(0x060));	/* InterruptACK: we polled; drop the line */
	mmio = NULL;
}

static int cmdline_has(const char *cmdline, const char *word)
{
	for (const char *p = cmdline; *p; p++)
		if ((p == cmdline || p[-1] == ' ') && starts(p, word) &&
		    (p[strlen_(word)] == ' ' || !p[strlen_(word)]))
			return 1;
	return 0;
}

/* ---- TX ---- */

static void rx_give_back(uint16_t id)
{
	rxq.avail.ring[rxq.avail.idx % QSZ] = id;
	barrier();
	rxq.avail.idx++;
}

/*
 * Payloads are not copied (ring 0 is emulated here: a copy costs about a microsecond per
 * byte): a packet is a header descriptor chained to a descriptor pointing at the data, which
 * must stay put until the device has used the chain.  The device gathers a TX chain before
 * it looks at any later packet, so data whose credit we return in the same or a later
 * packet is safe to reuse once the host sends more.
 */
static void tx_reclaim(void)
{
	int gave = 0;

	while (txq.last_used != *(volatile uint16_t *)&txq.used.idx) {
		uint16_t head;

		barrier();
		head = (uint16_t)txq.used.ring[txq.last_used % QSZ].id;
		txq.last_used++;
		if (head >= QSZ)
			continue;
		if (txq.desc[head].flags & 1)	/* VRING_DESC_F_NEXT */
			tx_free[tx_nfree++] = txq.desc[head].next;
		tx_free[tx_nfree++] = head;
		if (tx_hold[head] >= 0) {
			rx_give_back((uint16_t)tx_hold[head]);
			tx_hold[head] = -1;
			gave = 1;
		}
	}
	if (gave) {
		barrier();
		wr(R_QUEUE_NOTIFY, 0);
	}
}

static uint16_t desc_alloc(void)
{
	for (;;) {
		tx_reclaim();
		if (tx_nfree)
			return tx_free[--tx_nfree];
		wait_used(&txq);
	}
}

/**
 * send_raw() - one packet to the host (waits for free descriptors)
 * @hold:	RX buffer that @data lives in, given back when the device is done; or -1
 */
static void send_raw(struct conn *c, uint32_t lport, uint32_t pport, uint16_t op,
		     uint32_t flags, const void *data, uint32_t len, int hold)
{
	struct hdr h = {
		.src_cid = guest_cid, .dst_cid = HOST_CID, .src_port = lport, .dst_port = pport,
		.len = len, .type = 1, .op = op, .flags = flags,
		.buf_alloc = c && c->lport != 1026 ? SINK_ALLOC : CONN_BUF,
		.fwd_cnt = c ? c->fwd_cnt : 0,
	};
	uint16_t d = desc_alloc(), d2;

	memcpy(tx_bufs[d], &h, sizeof(h));
	txq.desc[d].addr = (uintptr_t)tx_bufs[d];
	txq.desc[d].len = (uint32_t)sizeof(h);
	txq.desc[d].flags = 0;
	tx_hold[d] = hold;
	if (len && len <= TX_SMALL - sizeof(h) && hold < 0) {
		memcpy(tx_bufs[d] + sizeof(h), data, len);
		txq.desc[d].len += len;
	} else if (len) {
		d2 = desc_alloc();
		txq.desc[d2].addr = (uintptr_t)data;
		txq.desc[d2].len = len;
		txq.desc[d2].flags = 0;
		txq.desc[d].flags = 1;
		txq.desc[d].next = d2;
	}
	txq.avail.ring[txq.avail.idx % QSZ] = d;
	barrier();
	txq.avail.idx++;
	barrier();
	wr(R_QUEUE_NOTIFY, 1);
	if (c) {
		c->fwd_told = c->fwd_cnt;
		c->tx_cnt += len;
	}
}

static void send_ctl(struct conn *c, uint16_t op, uint32_t flags)
{
	send_raw(c, c->lport, c->pport, op, flags, 0, 0, -1);
}

static uint32_t credit(struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd;

	return in_flight > c->peer_alloc ? 0 : c->peer_alloc - in_flight;
}

/** send_data() - as much of @data as the host's credit allows; Return: bytes sent */
static uint32_t send_data(struct conn *c, const uint8_t *data, uint32_t len)
{
	uint32_t done = 0;

	while (done < len) {
		uint32_t n = len - done, cr = credit(c);

		if (n > 65536)
			n = 65536;
		if (n > cr)
			n = cr;
		if (!n)
			break;
		send_raw(c, c->lport, c->pport, OP_RW, 0, data + done, n, -1);
		done += n;
	}
	return done;
}

static void consumed(struct conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->fwd_told >= (c->lport == 1026 ? CONN_BUF / 4 : SINK_ALLOC / 4))
		send_ctl(c, OP_CREDIT_UPDATE, 0);
}

static void conn_close(struct conn *c)
{
	if (!c->closed) {
		send_ctl(c, OP_SHUTDOWN, 3);
		c->closed = 1;
	}
}

/* ---- ports ---- */

static void json_line(struct conn *c, const uint8_t *line, uint32_t len)
{
	static const char pong[] = "{\"status\":\"pong\"}\n";
	static const char err[] = "{\"status\":\"error\",\"error\":\"unknown command\"}\n";
	int ping = 0;

	for (uint32_t i = 0; i + 6 <= len; i++)
		if (!memcmp(line + i, "\"ping\"", 6))
			ping = 1;
	if (ping)
		send_data(c, (const uint8_t *)pong, sizeof(pong) - 1);
	else
		send_data(c, (const uint8_t *)err, sizeof(err) - 1);
}

/** echo_flush() - send back what the host's credit allows of the backlog */
static void echo_flush(struct conn *c)
{
	while (c->len) {
		uint32_t first = CONN_BUF - c->head, n;

		if (first > c->len)
			first = c->len;
		n = send_data(c, c->buf + c->head, first);
		if (!n)
			break;
		c->head = (c->head + n) % CONN_BUF;
		c->len -= n;
		consumed(c, n);
	}
	if (!c->len && (c->peer_shut & 2))
		conn_close(c);
}

/* byte i of a source stream is i * 7 (mod 256): period 256, built once by doubling copies */
static uint8_t source_pattern[65536 + 256];

static void source_init(void)
{
	for (uint32_t i = 0; i < 256; i++)
		source_pattern[i] = (uint8_t)(i * 7);
	for (uint32_t n = 256; n < sizeof(source_pattern); n *= 2)
		memcpy(source_pattern + n, source_pattern,
		       n <= sizeof(source_pattern) - n ? n : sizeof(source_pattern) - n);
}

static void source_run(struct conn *c)
{
	while (c->count && !c->closed) {
		uint32_t n = c->count > 65536 ? 65536 : (uint32_t)c->count, cr;

		cr = credit(c);
		if (n > cr)
			n = cr;
		if (!n)
			return;
		send_data(c, source_pattern + c->tx_cnt % 256, n);
		c->count -= n;
	}
	if (!c->count)
		conn_close(c);
}

static void on_data(struct conn *c, const uint8_t *p, uint32_t len)
{
	switch (c->lport) {
	case 1025:
		for (uint32_t i = 0; i < len; i++) {
			if (p[i] == '\n') {
				json_line(c, c->buf, c->len);
				c->len = 0;
			} else if (c->len < CONN_BUF) {
				c->buf[c->len++] = p[i];
			}
		}
		consumed(c, len);
		break;
	case 1026:
		if (!c->len && len <= credit(c) && cur_rx >= 0) {
			/* send it straight back from the RX buffer, which we keep until then */
			c->fwd_cnt += len;
			send_raw(c, c->lport, c->pport, OP_RW, 0, p, len, cur_rx);
			rx_held = 1;
			break;
		}
		if (len > CONN_BUF - c->len)	/* the host's credit rules this out */
			len = CONN_BUF - c->len;
		{
			/* whole-buffer copies: byte loops are slow when ring 0 is emulated */
			uint32_t tail = (c->head + c->len) % CONN_BUF;
			uint32_t first = CONN_BUF - tail < len ? CONN_BUF - tail : len;

			memcpy(c->buf + tail, p, first);
			memcpy(c->buf, p + first, len - first);
			c->len += len;
		}
		echo_flush(c);
		break;
	case 1027:
		c->count += len;
		consumed(c, len);
		break;
	case 1028:
		for (uint32_t i = 0; i < len && !c->source_started; i++) {
			if (p[i] >= '0' && p[i] <= '9')
				c->count = c->count * 10 + (uint64_t)(p[i] - '0');
			else if (p[i] == '\n')
				c->source_started = 1;
		}
		consumed(c, len);
		if (c->source_started)
			source_run(c);
		break;
	default:	/* our own outgoing connection: print what the host says */
		puts_("vsock-guest: host says: ");
		for (uint32_t i = 0; i < len; i++)
			outb(COM1, p[i]);
		consumed(c, len);
		break;
	}
}

static void on_shutdown(struct conn *c, uint32_t flags)
{
	char line[32];

	c->peer_shut |= flags & 3;
	if (c->peer_shut == 3) {	/* the host closed: answer RST, forget it */
		send_ctl(c, OP_RST, 0);
		c->state = C_FREE;
		return;
	}
	if (!(flags & 2))
		return;
	if (c->lport == 1027) {
		size_t n = fmtu(line, c->count);

		line[n++] = '\n';
		send_data(c, (const uint8_t *)line, (uint32_t)n);
		conn_close(c);
	} else if (c->lport == 1026) {
		echo_flush(c);
	} else {
		conn_close(c);
	}
}

static struct conn *conn_find(uint32_t lport, uint32_t pport)
{
	for (int i = 0; i < MAX_CONNS; i++)
		if (conns[i].state != C_FREE && conns[i].lport == lport &&
		    conns[i].pport == pport)
			return &conns[i];
	return NULL;
}

static struct conn *conn_alloc(uint32_t lport, uint32_t pport)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &conns[i];

		if (c->state == C_FREE) {
			memset(c, 0, offsetof(struct conn, buf));
			c->head = c->len = 0;
			c->count = 0;
			c->source_started = 0;
			c->lport = lport;
			c->pport = pport;
			return c;
		}
	}
	return NULL;
}

static uint32_t out_port = 50000;
static struct conn *out_conn;
static int out_done, out_tries;
static uint64_t out_retry_at;

static void connect_host(void)
{
	out_conn = conn_alloc(++out_port, connect_port);
	if (!out_conn)
		return;
	out_conn->state = C_CONNECTING;
	out_tries++;
	send_ctl(out_conn, OP_REQUEST, 0);
}

static void on_packet(const struct hdr *h, const uint8_t *payload)
{
	struct conn *c;

	if (h->dst_cid != guest_cid || h->src_cid != HOST_CID || h->type != 1)
		return;
	c = conn_find(h->dst_port, h->src_port);
	if (!c) {
		if (h->op == OP_REQUEST && h->dst_port >= 1025 && h->dst_port <= 1028 &&
		    (c = conn_alloc(h->dst_port, h->src_port))) {
			c->state = C_OPEN;
			c->peer_alloc = h->buf_alloc;
			c->peer_fwd = h->fwd_cnt;
			send_ctl(c, OP_RESPONSE, 0);
		} else if (h->op != OP_RST) {
			send_raw(NULL, h->dst_port, h->src_port, OP_RST, 0, 0, 0, -1);
		}
		return;
	}
	c->peer_alloc = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
	switch (h->op) {
	case OP_RESPONSE:
		if (c == out_conn && c->state == C_CONNECTING) {
			static const char hello[] = "hello from guest cid ";
			char msg[48];
			size_t n = sizeof(hello) - 1;

			c->state = C_OPEN;
			memcpy(msg, hello, n);
			n += fmtu(msg + n, guest_cid);
			msg[n++] = '\n';
			send_data(c, (const uint8_t *)msg, (uint32_t)n);
			send_ctl(c, OP_SHUTDOWN, 2);	/* done sending; the host may answer */
			puts_("vsock-guest: connected to host port ");
			putu(connect_port);
			puts_("\n");
			out_done = 1;
		}
		break;
	case OP_RST:
		if (c == out_conn && c->state == C_CONNECTING) {
			out_conn = NULL;
			out_retry_at = rdtsc() + 200000000ull;	/* try again a little later */
		}
		c->state = C_FREE;
		break;
	case OP_SHUTDOWN:
		on_shutdown(c, h->flags);
		break;
	case OP_RW:
		if (c->state == C_OPEN && !(c->peer_shut & 2))
			on_data(c, payload, h->len);
		break;
	case OP_CREDIT_REQUEST:
		send_ctl(c, OP_CREDIT_UPDATE, 0);
		break;
	default:
		break;
	}
}

/** poll_rx() - handle every used RX buffer and give it back; Return: how many */
static int poll_rx(void)
{
	int n = 0;

	while (rxq.last_used != *(volatile uint16_t *)&rxq.used.idx) {
		uint32_t id, len;
		struct hdr h;

		barrier();
		id = rxq.used.ring[rxq.last_used % QSZ].id;
		len = rxq.used.ring[rxq.last_used % QSZ].len;
		rxq.last_used++;
		if (id >= QSZ)
			continue;
		cur_rx = (int)id;
		rx_held = 0;
		if (len >= sizeof(h)) {
			memcpy(&h, rx_bufs[id], sizeof(h));
			if (h.len <= len - sizeof(h))
				on_packet(&h, rx_bufs[id] + sizeof(h));
		}
		cur_rx = -1;
		if (!rx_held)
			rx_give_back((uint16_t)id);
		n++;
	}
	if (n) {
		barrier();
		wr(R_QUEUE_NOTIFY, 0);
	}
	return n;
}

/** service() - push what credit now allows (echo backlogs, sources) */
static void service(void)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &conns[i];

		if (c->state != C_OPEN || c->closed)
			continue;
		if (c->lport == 1026 && c->len)
			echo_flush(c);
		else if (c->lport == 1028 && c->source_started)
			source_run(c);
	}
}

void guest_main(const uint8_t *bp)
{
	uint64_t cmd = *(const uint32_t *)(bp + 0x228) |
		       (uint64_t)*(const uint32_t *)(bp + 0xc8) << 32;

	puts_("vsock-guest: booted\n");
	if (cmd && cmdline_has((const char *)(uintptr_t)cmd, "testguest.net=1"))
		net_test((const char *)(uintptr_t)cmd);
	if (!cmd || find_vsock((const char *)(uintptr_t)cmd) || init_device()) {
		puts_("vsock-guest: no usable virtio-vsock device\n");
		for (;;)
			__asm__ volatile("hlt");
	}
	irq_setup();
	source_init();
	puts_("vsock-guest: ready cid=");
	putu(guest_cid);
	puts_(" ports 1025-1028\n");
	connect_host();
	for (;;) {
		poll_rx();
		service();
		tx_reclaim();
		if (!out_done && !out_conn && out_tries < 60) {
			while (rdtsc() < out_retry_at)
				__asm__ volatile("pause");	/* refused: try again a bit later */
			connect_host();
		}
		wait_used(&rxq);
	}
}

/* Entry: our own stack, boot_params pointer (%rsi) as the argument. */
__asm__(".section .text.entry, \"ax\"\n"
	".globl _start\n"
	"_start:\n"
	"	cli\n"
	"	lea guest_stack+65536(%rip), %rsp\n"
	"	mov %rsi, %rdi\n"
	"	call guest_main\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	".previous\n");
