/* SPDX-License-Identifier: MIT */
/*
 * vsock_echo.c - /init of a test initramfs: a Linux guest program on its own AF_VSOCK socket.
 *
 * Test code (the nested-KVM tier, tests/nested/): listens on vsock port 5000, accepts one
 * connection and echoes every byte back as it arrives until the host half-closes its side;
 * then it sends what is still buffered, closes, prints "vsock-echo: N bytes" on the console
 * and powers the guest off.  The host checks that what came back is byte-for-byte what it sent
 * (so both directions carry the whole stream) and that the count printed here matches.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define ECHO_PORT 5000

/**
 * echo_all() - write @len bytes of @buf to @fd
 * Return: 0, or -1 on error.
 */
static int echo_all(int fd, const char *buf, size_t len)
{
	ssize_t w;

	while (len) {
		w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int main(void)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				 .svm_port = ECHO_PORT };
	static char buf[1 << 16];
	unsigned long long total = 0;
	int l, c, bad = 0;
	ssize_t n;

	l = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
		printf("vsock-echo: cannot listen: %s\n", strerror(errno));
		goto off;
	}
	printf("vsock-echo: listening on port %d\n", ECHO_PORT);
	fflush(stdout);
	c = accept(l, NULL, NULL);
	if (c < 0) {
		printf("vsock-echo: accept: %s\n", strerror(errno));
		goto off;
	}
	for (;;) {
		n = read(c, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			printf("vsock-echo: read: %s\n", strerror(errno));
			bad = 1;
			break;
		}
		if (n == 0)	/* the host's half-close */
			break;
		if (echo_all(c, buf, (size_t)n)) {
			printf("vsock-echo: write: %s\n", strerror(errno));
			bad = 1;
			break;
		}
		total += (unsigned long long)n;
	}
	close(c);
	printf("vsock-echo: %llu bytes%s\n", total, bad ? " (error)" : "");
off:
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
