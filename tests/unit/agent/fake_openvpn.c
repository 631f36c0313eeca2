// SPDX-License-Identifier: MIT
/*
 * fake_openvpn.c - stands in for OpenVPN in test_agent_vpn: vpn.c starts it exactly as it
 * starts OpenVPN, and the test plays the management interface.
 *
 * It connects to the management socket named after --management (as OpenVPN does with
 * --management-client), then connects to the test's Unix socket $FAKE_OVPN_SOCK and hands
 * over the management connection (SCM_RIGHTS) with a line "PID ARG1 ARG2 ...". The test
 * then holds the management connection itself. The fake waits on the test's connection:
 * a byte N makes it exit with status N; end of stream makes it exit 0.
 *
 * $FAKE_OVPN_MODE: "early" writes an OpenVPN-style error line to its log (stdout) and
 * exits 1 without connecting; "noterm" ignores SIGTERM (vpn.c then escalates to SIGKILL).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/**
 * connect_unix() - a connected Unix stream socket
 * @path:	socket path
 *
 * Return: descriptor, exits on failure
 */
static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || strlen(path) >= sizeof(sun.sun_path))
		exit(2);
	strcpy(sun.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "ERROR: fake openvpn: cannot connect to %s\n", path);
		exit(2);
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *mode = getenv("FAKE_OVPN_MODE"), *test = getenv("FAKE_OVPN_SOCK");
	const char *mgmt_path = NULL;
	char info[4096], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	size_t len;
	int mfd, tfd;
	unsigned char b;

	if (mode && !strcmp(mode, "early")) {
		printf("2026-01-01 00:00:00 Options error: Unrecognized option: bogus\n");
		printf("2026-01-01 00:00:00 Use --help for more information.\n");
		return 1;
	}
	if (mode && !strcmp(mode, "noterm"))
		signal(SIGTERM, SIG_IGN);
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--management"))
			mgmt_path = argv[i + 1];
	if (!mgmt_path || !test)
		return 2;
	mfd = connect_unix(mgmt_path);
	tfd = connect_unix(test);
	len = (size_t)snprintf(info, sizeof(info), "%d", (int)getpid());
	for (int i = 1; i < argc && len < sizeof(info); i++)
		len += (size_t)snprintf(info + len, sizeof(info) - len, " %s", argv[i]);
	if (len >= sizeof(info))
		len = sizeof(info) - 1;
	iov.iov_base = info;
	iov.iov_len = len;
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
	if (sendmsg(tfd, &mh, 0) < 0)
		return 2;
	close(mfd);
	if (read(tfd, &b, 1) == 1)
		return b;
	return 0;
}
