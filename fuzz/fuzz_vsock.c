/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vsock.c - libFuzzer target for the vsock engine's packet handling (guest-facing).
 *
 * The input is a script of records [kind][len lo][len hi][len bytes]:
 *   kind % 5 == 0: the bytes are a raw TX packet (header + payload) as the guest wrote it
 *   kind % 5 == 1: the bytes fill a header that is made well-formed (CIDs, length) so that
 *                  the fuzzer reaches the connection logic: REQUEST/RW/SHUTDOWN/credit...
 *   kind % 5 == 2: the guest offers an RX buffer of len bytes
 *   kind % 5 == 3: host side: write the bytes to the newest accepted stream
 *   kind % 5 == 4: host side: shut down or close an accepted stream, then poll
 * Host ports 1..4 have listeners, so guest REQUESTs create real connections.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"

#define MAX_FDS 64

static int fds[MAX_FDS];
static int nfds;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_accept(void *opaque, uint32_t port, int fd)
{
	(void)opaque;
	(void)port;
	if (nfds < MAX_FDS)
		fds[nfds++] = fd;
	else
		close(fd);
}

static void wellformed(struct vsock_dev *d, const uint8_t *p, size_t len)
{
	static uint8_t pkt[VSOCK_HDR_LEN + 4096];
	struct vsock_hdr h;
	size_t payload;

	memset(pkt, 0, VSOCK_HDR_LEN);
	memcpy(pkt, p, len < VSOCK_HDR_LEN ? len : VSOCK_HDR_LEN);
	vsock_hdr_decode(&h, pkt);
	payload = len > VSOCK_HDR_LEN ? len - VSOCK_HDR_LEN : 0;
	if (payload > 4096)
		payload = 4096;
	h.src_cid = 3;
	h.dst_cid = 2;
	h.dst_port %= 6;		/* 1..4 listen, 0 and 5 do not */
	h.src_port %= 8;
	h.type = h.type % 4 ? 1 : h.type;
	h.op %= 9;
	h.len = (uint32_t)payload;
	vsock_hdr_encode(&h, pkt);
	memcpy(pkt + VSOCK_HDR_LEN, p + VSOCK_HDR_LEN, payload);
	vsock_dev_tx(d, pkt, VSOCK_HDR_LEN + payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rx[VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD];
	struct vsock_dev *d = vsock_dev_new(3);
	uint32_t port;

	if (!d)
		return 0;
	nfds = 0;
	for (port = 1; port <= 4; port++)
		vsock_dev_listen(d, port, on_accept, NULL);
	while (size >= 3) {
		unsigned int kind = data[0] % 5;
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		switch (kind) {
		case 0:
			vsock_dev_tx(d, data, len);
			break;
		case 1:
			wellformed(d, data, len);
			break;
		case 2:
			vsock_dev_poll(d, 0);
			vsock_dev_rx(d, rx, len ? len * 16 % sizeof(rx) : sizeof(rx));
			break;
		case 3:
			if (nfds)
				(void)!send(fds[nfds - 1], data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case 4:
			if (nfds && len) {
				int i = data[0] % nfds;

				if (data[0] & 0x80) {
					close(fds[i]);
					fds[i] = fds[--nfds];
				} else {
					shutdown(fds[i], data[0] & 1 ? SHUT_WR : SHUT_RD);
				}
			}
			vsock_dev_poll(d, 0);
			break;
		}
		data += len;
		size -= len;
	}
	while (vsock_dev_rx(d, rx, sizeof(rx)))
		;
	vsock_dev_free(d);
	while (nfds)
		close(fds[--nfds]);
	return 0;
}
