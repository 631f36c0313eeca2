/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock device (device id 19): the connection engine and its virtio glue.
 * See the theory of operation at the top of vsock.c.
 */
#ifndef MVM_DEVICES_VIRTIO_VSOCK_H
#define MVM_DEVICES_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "microvm/vsock.h"
#include "runtime/vsock_client.h"

#define VSOCK_HOST_CID		2
#define VSOCK_DEFAULT_GUEST_CID	3
#define VSOCK_HDR_LEN		44
#define VSOCK_MAX_PAYLOAD	(64 * 1024)	/* per packet, both directions */
#define VSOCK_BUF_ALLOC		(256 * 1024)	/* what we advertise per connection */
#define VSOCK_DRAIN_MS		5000		/* teardown: longest wait for host readers */
#define VSOCK_MAX_CONNS		MVM_VSOCK_MAX_CONNS

/* virtio_vsock_hdr.op */
enum {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_TYPE_STREAM	1
#define VSOCK_SHUTDOWN_RCV	1u
#define VSOCK_SHUTDOWN_SEND	2u

/**
 * struct vsock_hdr - virtio_vsock_hdr in host byte order (44 bytes little-endian on the wire)
 */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

struct vsock_dev;

/**
 * typedef vsock_forward_cb - a guest connects to a host port nobody listens on
 * @opaque:	as given to vsock_dev_set_forward()
 * @port:	the host port
 *
 * Return: a connected stream to hand the connection to (the device owns it), or -errno to
 * refuse.  Used by the Firecracker-style Unix socket bridge (PATH_<port>).
 */
typedef int (*vsock_forward_cb)(void *opaque, uint32_t port);

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t *p);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *p);

struct vsock_dev *vsock_dev_new(uint64_t guest_cid);
void vsock_dev_free(struct vsock_dev *d);
uint64_t vsock_dev_guest_cid(const struct vsock_dev *d);

int vsock_dev_tx(struct vsock_dev *d, const uint8_t *pkt, size_t len);
size_t vsock_dev_rx(struct vsock_dev *d, uint8_t *buf, size_t cap);
int vsock_dev_poll(struct vsock_dev *d, int timeout_ms);
void vsock_dev_reset(struct vsock_dev *d);

#define VSOCK_CONNECT_FC_OK	1u
int vsock_dev_connect_fd(struct vsock_dev *d, uint32_t port, int fd, int timeout_ms,
			 unsigned int flags);
int vsock_dev_connect(struct vsock_dev *d, uint32_t port, int timeout_ms);
int vsock_dev_listen(struct vsock_dev *d, uint32_t port, mvm_vsock_accept_cb cb, void *opaque);
void vsock_dev_unlisten(struct vsock_dev *d, uint32_t port);
void vsock_dev_set_forward(struct vsock_dev *d, vsock_forward_cb cb, void *opaque);

void vsock_dev_kick(struct vsock_dev *d);
void vsock_dev_report(struct vsock_dev *d, const char *why);
unsigned long vsock_dev_guest_errors(struct vsock_dev *d);
unsigned int vsock_dev_nconns(struct vsock_dev *d);

extern const struct mvm_vsock_transport vsock_dev_transport;

/* The virtio device around the engine: a thread that moves packets between the queues
 * and the engine.  Create it, then virtio_mmio_new(&vsock_virtio_ops, v, ...). */
struct virtio_dev_ops;
struct vsock_virtio;
extern const struct virtio_dev_ops vsock_virtio_ops;
struct vsock_virtio *vsock_virtio_new(uint64_t guest_cid);
void vsock_virtio_free(struct vsock_virtio *v);
struct vsock_dev *vsock_virtio_engine(struct vsock_virtio *v);
mvm_vsock *vsock_virtio_client(struct vsock_virtio *v);
int vsock_virtio_bridge(struct vsock_virtio *v, const char *path);

/* Firecracker-compatible Unix socket bridge (vsock_uds.c) */
struct vsock_uds;
struct vsock_uds *vsock_uds_new(struct vsock_dev *d, const char *path);
void vsock_uds_free(struct vsock_uds *u);
/* longest CONNECT line accepted, without "\r\n" ("CONNECT " + 10 digits fits) */
#define VSOCK_UDS_LINE_MAX	62
long vsock_uds_parse_connect(const char *line, size_t len);

#endif
