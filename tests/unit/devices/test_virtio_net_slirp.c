/* SPDX-License-Identifier: MIT */
/* test_virtio_net_slirp.c - virtio-net wired to libslirp: the simulated guest ARPs for the
 * gateway and gets slirp's answer through the RX queue (no traffic leaves the process). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "devices/virtio/net_slirp.h"
#include "virtio_sim.h"

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x11, 0x22, 0x33 };

/* An ARP request "who has @tpa? tell 10.0.2.15" from guest_mac; returns its length. */
static size_t arp_request(unsigned char *p, const char *tpa)
{
	uint32_t spa = inet_addr("10.0.2.15"), tip = inet_addr(tpa);

	memset(p, 0xff, 6);				/* broadcast */
	memcpy(p + 6, guest_mac, 6);
	p[12] = 0x08, p[13] = 0x06;			/* ARP */
	p[14] = 0, p[15] = 1;				/* Ethernet */
	p[16] = 0x08, p[17] = 0;			/* IPv4 */
	p[18] = 6, p[19] = 4;
	p[20] = 0, p[21] = 1;				/* request */
	memcpy(p + 22, guest_mac, 6);
	memcpy(p + 28, &spa, 4);
	memset(p + 32, 0, 6);
	memcpy(p + 38, &tip, 4);
	memset(p + 42, 0, 18);				/* pad to 60 */
	return 60;
}

static void test_arp_through_slirp(void **state)
{
	unsigned char hdr[VIRTIO_NET_HDR_LEN] = { 0 }, req[60], got[VIRTIO_NET_HDR_LEN + 1514];
	struct iovec out[2] = { { hdr, sizeof(hdr) }, { req, 0 } };
	struct virtio_net_stats st;
	struct virtio_net_slirp *ns;
	size_t rxlen = sizeof(got);
	uint32_t gw = inet_addr("10.0.2.2"), len = 0;
	struct vsim s;
	int i;

	(void)state;
	ns = virtio_net_slirp_new(guest_mac, NULL);
	assert_non_null(ns);
	assert_int_equal(vsim_init(&s, 0), 0);
	assert_int_equal(vsim_attach(&s, &virtio_net_ops, virtio_net_slirp_dev(ns)), 0);
	assert_int_equal(vsim_start(&s, 1ull << VIRTIO_NET_F_MAC, 64), 0);
	for (i = 0; i < 8; i++)
		assert_true(vsim_post(&s, VIRTIO_NET_RXQ, NULL, 0, &rxlen, 1) >= 0);
	out[1].iov_len = arp_request(req, "10.0.2.2");
	assert_true(vsim_post(&s, VIRTIO_NET_TXQ, out, 2, NULL, 0) >= 0);
	vsim_kick(&s, VIRTIO_NET_TXQ);
	/* The reply comes from the slirp thread; wait for it (5 s at most). */
	for (i = 0; i < 500 && !vsim_used_pending(&s, VIRTIO_NET_RXQ); i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	assert_true(vsim_used(&s, VIRTIO_NET_RXQ, &len, got, sizeof(got)) >= 0);
	assert_true(len >= VIRTIO_NET_HDR_LEN + 42);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, guest_mac, 6);	/* to us */
	assert_int_equal(got[VIRTIO_NET_HDR_LEN + 12], 0x08);
	assert_int_equal(got[VIRTIO_NET_HDR_LEN + 13], 0x06);		/* ARP */
	assert_int_equal(got[VIRTIO_NET_HDR_LEN + 21], 2);		/* reply */
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN + 28, &gw, 4);	/* from 10.0.2.2 */
	virtio_net_get_stats(virtio_net_slirp_dev(ns), &st);
	assert_true(st.tx_frames == 1);
	assert_true(st.rx_frames >= 1);
	/* Teardown order: adapter (stops slirp) before the transport. */
	virtio_net_slirp_free(ns);
	vsim_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arp_through_slirp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
