/* SPDX-License-Identifier: MIT */
/**
 * DOC: Theory of operation - virtio-net
 *
 * Queues: 0 is RX (the driver posts writable buffers), 1 is TX (the driver posts readable
 * chains).  Each chain starts with a 12-byte virtio_net_hdr_v1.  We offer no offloads, so on
 * TX the header must say "no GSO" and needs no checksum work (a header asking for offloads
 * we never offered is a driver bug: the frame is dropped and counted); on RX we write an
 * all-zero header with num_buffers = 1.
 *
 * TX runs on the vCPU thread in queue_notify: each chain is gathered into a scratch buffer
 * (a frame may span several segments), the header is stripped and the frame is handed to the
 * back end's send(), which must not block.  We never hold our lock across send(), because
 * the back end's thread may be inside virtio_net_receive() holding its own lock.
 *
 * RX runs on the back end's thread: virtio_net_receive() takes the device lock (which also
 * serialises against reset), pops one RX buffer, checks the frame fits (else it puts the
 * buffer back and drops the frame), copies header and frame, pushes and notifies.
 *
 * Lifecycle: activate (DRIVER_OK) gives us the queues; reset takes them away under the lock,
 * so a concurrent receive either finishes first or sees the device inactive.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "runtime/error.h"

_Static_assert(sizeof(struct virtio_net_hdr_v1) == VIRTIO_NET_HDR_LEN, "virtio-net header");

/* Config space we expose: mac, status, max_virtqueue_pairs. */
#define VIRTIO_NET_CONFIG_SIZE	10

/**
 * struct virtio_net - the device
 * @lock:	protects @vqs, @active and @stats
 * @vqs:	the transport's queues while active
 * @active:	DRIVER_OK seen and not reset since
 * @config:	config space image (little endian)
 * @be_ops:	back end
 * @be:		back end context
 * @stats:	counters
 * @tx_buf:	scratch for one TX chain (vCPU thread only, serialised by the transport)
 * @tx_elem:	scratch TX element
 * @rx_elem:	scratch RX element (under @lock)
 */
struct virtio_net {
	pthread_mutex_t lock;
	struct virtq *vqs;
	bool active;
	unsigned char config[VIRTIO_NET_CONFIG_SIZE];
	const struct virtio_net_backend_ops *be_ops;
	void *be;
	struct virtio_net_stats stats;
	unsigned char tx_buf[VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME];
	struct virtq_elem tx_elem;
	struct virtq_elem rx_elem;
};

static void virtio_net_config_read(void *dev, uint32_t offset, void *data, unsigned int len)
{
	struct virtio_net *n = dev;

	memcpy(data, n->config + offset, len);
}

/**
 * virtio_net_tx_one() - send one TX chain to the back end
 * @n:		the device
 * @elem:	the chain
 *
 * Return: 0 if sent, or -errno if dropped (and the reason counted).
 */
static int virtio_net_tx_one(struct virtio_net *n, const struct virtq_elem *elem)
{
	const struct virtio_net_hdr_v1 *hdr = (const void *)n->tx_buf;
	size_t len;
	int rc;

	if (elem->out_len < VIRTIO_NET_HDR_LEN ||
	    elem->out_len > VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME)
		goto bad;
	len = virtq_iov_to_buf(elem->out, elem->out_num, 0, n->tx_buf, elem->out_len);
	if (hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE || (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		goto bad;
	rc = n->be_ops && n->be_ops->send ?
	     n->be_ops->send(n->be, n->tx_buf + VIRTIO_NET_HDR_LEN, len - VIRTIO_NET_HDR_LEN) :
	     -ENODEV;
	pthread_mutex_lock(&n->lock);
	if (rc)
		n->stats.tx_dropped++;
	else
		n->stats.tx_frames++;
	pthread_mutex_unlock(&n->lock);
	return rc;
bad:
	pthread_mutex_lock(&n->lock);
	n->stats.tx_errors++;
	pthread_mutex_unlock(&n->lock);
	return -EINVAL;
}

/**
 * virtio_net_notify() - the driver kicked a queue
 * @dev:	the device
 * @vq:		the queue
 * @qidx:	VIRTIO_NET_RXQ (new RX buffers: nothing to do, frames are not queued) or
 *		VIRTIO_NET_TXQ (frames to send)
 */
static void virtio_net_notify(void *dev, struct virtq *vq, unsigned int qidx)
{
	struct virtio_net *n = dev;
	bool pushed = false;

	if (qidx != VIRTIO_NET_TXQ)
		return;
	while (virtq_pop(vq, &n->tx_elem) > 0) {
		virtio_net_tx_one(n, &n->tx_elem);
		virtq_push(vq, &n->tx_elem, 0);
		pushed = true;
	}
	if (pushed)
		virtq_notify(vq);
}

static int virtio_net_activate(void *dev, struct virtq *vqs, uint64_t features)
{
	struct virtio_net *n = dev;

	(void)features;
	pthread_mutex_lock(&n->lock);
	n->vqs = vqs;
	n->active = true;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

static void virtio_net_reset(void *dev)
{
	struct virtio_net *n = dev;

	pthread_mutex_lock(&n->lock);
	n->active = false;
	n->vqs = NULL;
	pthread_mutex_unlock(&n->lock);
}

const struct virtio_dev_ops virtio_net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS),
	.num_queues = 2,
	.queue_max = 256,
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	.config_read = virtio_net_config_read,
	.queue_notify = virtio_net_notify,
	.activate = virtio_net_activate,
	.reset = virtio_net_reset,
};

/* Copy header and frame into the popped RX element; lock held.  Return 0 or -EMSGSIZE. */
static int virtio_net_rx_fill(struct virtio_net *n, struct virtq *rxq, const void *frame,
			      size_t len)
{
	struct virtio_net_hdr_v1 hdr;
	struct virtq_elem *e = &n->rx_elem;

	if (e->in_len < VIRTIO_NET_HDR_LEN || len > e->in_len - VIRTIO_NET_HDR_LEN) {
		virtq_unpop(rxq, e);
		n->stats.rx_oversize++;
		return -EMSGSIZE;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.num_buffers = htole16(1);
	virtq_buf_to_iov(e->in, e->in_num, 0, &hdr, sizeof(hdr));
	virtq_buf_to_iov(e->in, e->in_num, sizeof(hdr), frame, len);
	virtq_push(rxq, e, (uint32_t)(sizeof(hdr) + len));
	n->stats.rx_frames++;
	return 0;
}

int virtio_net_receive(struct virtio_net *n, const void *frame, size_t len)
{
	struct virtq *rxq;
	int rc;

	pthread_mutex_lock(&n->lock);
	if (len > VIRTIO_NET_MAX_FRAME) {
		n->stats.rx_oversize++;
		rc = -EMSGSIZE;
		goto out;
	}
	if (!n->active) {
		n->stats.rx_no_buffer++;
		rc = -EAGAIN;
		goto out;
	}
	rxq = &n->vqs[VIRTIO_NET_RXQ];
	rc = virtq_pop(rxq, &n->rx_elem);
	if (rc <= 0) {
		n->stats.rx_no_buffer++;
		rc = rc ? -EIO : -EAGAIN;
		goto out;
	}
	rc = virtio_net_rx_fill(n, rxq, frame, len);
	if (!rc)
		virtq_notify(rxq);
out:
	pthread_mutex_unlock(&n->lock);
	return rc;
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *st)
{
	pthread_mutex_lock(&n->lock);
	*st = n->stats;
	pthread_mutex_unlock(&n->lock);
}

struct virtio_net *virtio_net_new(const uint8_t mac[6], const struct virtio_net_backend_ops *be_ops,
				  void *be)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint16_t v;

	if (!n) {
		mvm_set_error(-ENOMEM, "virtio-net: out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&n->lock, NULL)) {
		free(n);
		mvm_set_error(-ENOMEM, "virtio-net: cannot create lock");
		return NULL;
	}
	memcpy(n->config, mac, 6);
	v = htole16(VIRTIO_NET_S_LINK_UP);
	memcpy(n->config + 6, &v, 2);
	v = htole16(1);
	memcpy(n->config + 8, &v, 2);
	n->be_ops = be_ops;
	n->be = be;
	return n;
}

void virtio_net_free(struct virtio_net *n)
{
	if (!n)
		return;
	pthread_mutex_destroy(&n->lock);
	free(n);
}
