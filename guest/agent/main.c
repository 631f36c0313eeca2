// SPDX-License-Identifier: MIT
/*
 * main.c - microvm-agent: the guest's VPN daemon and inbound proxy
 *
 * Theory of operation
 *
 *   main.c is options, setup and the run: it parses the command line, creates the state
 *   and run directories, loads the auth secret, starts the event loop (loop.c), opens the
 *   two listening sockets and initialises the modules, which register their own event
 *   sources, tick functions and VPN state listeners:
 *
 *   - over TCP, every accepted connection first proves the host's secret (auth.c), then
 *     goes to its port's module; over vsock it goes there at once.
 *   - the control listener (port 1025) and its connections (control.c): newline-delimited
 *     JSON requests, one answer line each, in order; vpn_start and vpn_stop park the
 *     connection until the VPN reaches an outcome (control.c listens with vpn_on_change()).
 *   - the proxy listener (port 7602) and its relays (proxy.c); relays through a tunnel
 *     that went down are reset (proxy.c listens with vpn_on_change() too).
 *   - OpenVPN's management socket (vpn.c): OpenVPN is a child process started per
 *     connection with --management-client; it connects to our Unix socket and is driven
 *     from there only. vpn.c reaps it on SIGCHLD (agent_on_child()).
 *   - the resolver's pipe: results from the name resolution threads (resolve.c), the
 *     only other threads; they never touch agent state.
 *
 *   Arrows go one way: main -> control, proxy -> vpn -> loop; the VPN supervisor tells
 *   its users about changes through the callbacks they registered, never by name.
 *
 *   Exit: SIGTERM/SIGINT stop OpenVPN and exit 0. The "shutdown" request answers "ok",
 *   stops OpenVPN and exits with AGENT_EXIT_POWEROFF (100), which microvm-init takes as
 *   "power the machine off"; with --poweroff-on-shutdown the agent calls
 *   reboot(RB_POWER_OFF) itself (for a guest without microvm-init). Start-up errors exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

/**
 * mkdir_p() - create a directory and its parents
 * @path:	directory
 * @mode:	mode of the last component
 *
 * Return: 0 or -errno
 */
static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[300];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/**
 * read_secret() - the secret text from the provisioned file or descriptor
 * @a:		agent
 * @buf:	receives the bytes read
 * @size:	its size
 *
 * A file named with --auth-secret-file must not be accessible to group or others when it
 * is a regular file (a pipe such as /dev/stdin is private to us). A descriptor from
 * --auth-secret-fd is read from offset 0 (so a restarted agent reads it again) and closed.
 *
 * Return: bytes read, or -errno (-EPERM: the file is readable by others)
 */
static ssize_t read_secret(struct agent *a, char *buf, size_t size)
{
	struct stat st;
	ssize_t n;
	int fd;

	if (a->opts.auth_secret_fd >= 0) {
		fd = a->opts.auth_secret_fd;
		n = pread(fd, buf, size, 0);
		if (n < 0 && errno == ESPIPE)
			n = read(fd, buf, size);
		if (n < 0)
			n = -errno;
		close(fd);
		a->opts.auth_secret_fd = -1;
		return n;
	}
	fd = open(a->opts.auth_secret_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	/* One line: from a pipe (/dev/stdin), nothing after it is ours to consume. */
	for (n = 0; (size_t)n < size; n++) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR) {
			n--;
			continue;
		}
		if (r < 0) {
			n = -errno;
			break;
		}
		if (r == 0 || buf[n] == '\n')
			break;
	}
	close(fd);
	return n;
}

/**
 * load_secret() - the auth secret: provisioned by the host, or random (vsock only)
 * @a:		agent
 *
 * The secret is what get_auth_secret answers and, decoded, the key of the TCP
 * authentication handshake, set up for HMAC here, once (mvm_auth_key_init_hex()); over TCP
 * it must come from the host.
 *
 * Return: 0 or -errno (-ENOKEY: TCP without a secret; -EINVAL: not 64 hex characters;
 * -EPERM: the file is readable by others; -ENOMEM, -EIO: libcrypto failed)
 */
static int load_secret(struct agent *a)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[32];
	char buf[128];
	ssize_t n;
	int ret = 0;

	if (a->opts.auth_secret_file || a->opts.auth_secret_fd >= 0) {
		n = read_secret(a, buf, sizeof(buf) - 1);
		if (n < 0)
			return (int)n;
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		ret = mvm_auth_key_init_hex(&a->auth_key, buf, (size_t)n);
		for (ssize_t i = 0; !ret && i < n; i++)
			a->auth_secret[i] = (char)(buf[i] >= 'A' && buf[i] <= 'F' ? buf[i] - 'A' + 'a'
										 : buf[i]);
		a->auth_secret[ret ? 0 : MVM_SECRET_HEX_LEN] = '\0';
		explicit_bzero(buf, sizeof(buf));
		return ret;
	}
	if (!a->opts.vsock)
		return -ENOKEY;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	for (int i = 0; i < 32; i++) {
		a->auth_secret[2 * i] = hex[rnd[i] >> 4];
		a->auth_secret[2 * i + 1] = hex[rnd[i] & 15];
	}
	a->auth_secret[64] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: microvm-agent [OPTIONS]\n"
"The microvm guest agent: VPN control (JSON lines) and the inbound proxy.\n"
"\n"
"  --transport vsock|tcp     listen on vsock (any CID; default) or TCP\n"
"  --listen ADDR             TCP address to listen on (default 127.0.0.1)\n"
"  --control-port N          control port (default 1025)\n"
"  --proxy-port N            inbound proxy port (default 7602)\n"
"  --state-dir DIR           persistent state; profiles in DIR/profiles\n"
"                            (default /var/lib/microvm-agent)\n"
"  --run-dir DIR             runtime files: management socket, openvpn.log\n"
"                            (default /run/agent)\n"
"  --openvpn PATH            OpenVPN binary (default /usr/sbin/openvpn)\n"
"  --tun-dev NAME            tun device for the VPN (default tun0)\n"
"  --auth-secret-file PATH   read the auth secret (64 hex chars) from PATH (not\n"
"                            readable by others; /dev/stdin works); default: random\n"
"                            at start, vsock only: TCP needs the host's secret, which\n"
"                            every connection must prove (docs/protocol.md)\n"
"  --auth-secret-fd N        read the auth secret from the inherited descriptor N\n"
"  --connect-timeout SEC     proxy connect timeout (default 10)\n"
"  --vpn-timeout SEC         default vpn_start outcome timeout (default 60)\n"
"  --control-idle-timeout SEC  close a control connection idle this long\n"
"                            (default " AGENT_STR(AGENT_CTL_IDLE_S) ")\n"
"  --poweroff-on-shutdown    \"shutdown\" powers the machine off (reboot(2))\n"
"                            instead of exiting with status 100\n"
"  -v, --verbose             log more\n"
"  -h, --help                this text\n"
"\n"
"Exit status: 0 on SIGTERM/SIGINT, 100 after a \"shutdown\" request, 1 on errors.\n"
"Protocol: docs/protocol.md.\n");
}

/**
 * parse_uint() - a decimal option value within bounds
 * @s:		text
 * @min:	smallest allowed
 * @max:	largest allowed
 * @out:	result
 *
 * Return: 0 or -EINVAL
 */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

/**
 * copy_opt() - copy an option string into a fixed buffer
 * @dst:	buffer
 * @size:	its size
 * @s:		value
 *
 * Return: 0 or -ENAMETOOLONG
 */
static int copy_opt(char *dst, size_t size, const char *s)
{
	if (strlen(s) >= size)
		return -ENAMETOOLONG;
	strcpy(dst, s);
	return 0;
}

/**
 * parse_args() - command line into @o
 * @argc:	count
 * @argv:	arguments
 * @o:		options, defaults already set
 *
 * Return: 0, 1 for --help, -EINVAL on errors (reported)
 */
static int parse_args(int argc, char **argv, struct agent_opts *o)
{
	enum { O_TRANSPORT = 256, O_LISTEN, O_CPORT, O_PPORT, O_STATE, O_RUN, O_OPENVPN,
	       O_TUN, O_SECRET, O_SECRET_FD, O_CTIMEOUT, O_VTIMEOUT, O_ITIMEOUT, O_POWEROFF };
	static const struct option lo[] = {
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "control-port", required_argument, NULL, O_CPORT },
		{ "proxy-port", required_argument, NULL, O_PPORT },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "openvpn", required_argument, NULL, O_OPENVPN },
		{ "tun-dev", required_argument, NULL, O_TUN },
		{ "auth-secret-file", required_argument, NULL, O_SECRET },
		{ "auth-secret-fd", required_argument, NULL, O_SECRET_FD },
		{ "connect-timeout", required_argument, NULL, O_CTIMEOUT },
		{ "vpn-timeout", required_argument, NULL, O_VTIMEOUT },
		{ "control-idle-timeout", required_argument, NULL, O_ITIMEOUT },
		{ "poweroff-on-shutdown", no_argument, NULL, O_POWEROFF },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case O_TRANSPORT:
			if (!strcmp(optarg, "vsock"))
				o->vsock = true;
			else if (!strcmp(optarg, "tcp"))
				o->vsock = false;
			else
				bad = 1;
			break;
		case O_LISTEN:
			bad |= copy_opt(o->listen, sizeof(o->listen), optarg) != 0;
			break;
		case O_CPORT:
			bad |= parse_uint(optarg, 1, 0xffffffffUL, &o->control_port) != 0;
			break;
		case O_PPORT:
			bad |= parse_uint(optarg, 1, 0xffffffffUL, &o->proxy_port) != 0;
			break;
		case O_STATE:
			bad |= copy_opt(o->state_dir, sizeof(o->state_dir), optarg) != 0;
			break;
		case O_RUN:
			bad |= copy_opt(o->run_dir, sizeof(o->run_dir), optarg) != 0;
			break;
		case O_OPENVPN:
			bad |= copy_opt(o->openvpn, sizeof(o->openvpn), optarg) != 0;
			break;
		case O_TUN:
			bad |= copy_opt(o->tun_dev, sizeof(o->tun_dev), optarg) != 0;
			break;
		case O_SECRET:
			o->auth_secret_file = optarg;
			break;
		case O_SECRET_FD: {
			unsigned int v;

			bad |= parse_uint(optarg, 0, 65535, &v) != 0;
			o->auth_secret_fd = (int)v;
			break;
		}
		case O_CTIMEOUT:
			bad |= parse_uint(optarg, 1, 3600, &o->connect_timeout_s) != 0;
			break;
		case O_VTIMEOUT:
			bad |= parse_uint(optarg, 1, 3600, &o->vpn_timeout_s) != 0;
			break;
		case O_ITIMEOUT:
			bad |= parse_uint(optarg, 1, 86400, &o->ctl_idle_s) != 0;
			break;
		case O_POWEROFF:
			o->poweroff_on_shutdown = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (bad) {
			fprintf(stderr, "microvm-agent: bad value for --%s: %s\n",
				lo[c - O_TRANSPORT].name, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "microvm-agent: unexpected argument: %s\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->vsock && (o->control_port > 65535 || o->proxy_port > 65535)) {
		fprintf(stderr, "microvm-agent: TCP ports are 1-65535\n");
		return -EINVAL;
	}
	return 0;
}

/**
 * setup() - directories, secret, event loop, sockets, modules
 * @a:		agent with options set
 *
 * Return: 0 or -errno (reported)
 */
static int setup(struct agent *a)
{
	struct rlimit rl;
	int ret, cfd, pfd;

	/* A thousand relays need two descriptors each. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((size_t)snprintf(a->profile_dir, sizeof(a->profile_dir), "%s/profiles",
			     a->opts.state_dir) >= sizeof(a->profile_dir))
		return -ENAMETOOLONG;
	ret = mkdir_p(a->profile_dir, 0700);
	if (ret) {
		agent_log(a, "cannot create %s: %s", a->profile_dir, strerror(-ret));
		return ret;
	}
	ret = mkdir_p(a->opts.run_dir, 0700);
	if (ret) {
		agent_log(a, "cannot create %s: %s", a->opts.run_dir, strerror(-ret));
		return ret;
	}
	chmod(a->opts.run_dir, 0700);
	ret = load_secret(a);
	if (ret) {
		agent_log(a, "auth secret: %s",
			  ret == -EINVAL ? "the file must hold 64 hex characters" :
			  ret == -EPERM ? "the file is readable by others (chmod 600 it)" :
			  ret == -ENOKEY ? "--transport tcp needs the host's secret "
					   "(--auth-secret-file or --auth-secret-fd): every TCP "
					   "connection must prove it" : strerror(-ret));
		return ret;
	}

	ret = agent_loop_init(a);
	if (ret) {
		agent_log(a, "event loop: %s", strerror(-ret));
		return ret;
	}

	cfd = agent_listen(&a->opts, a->opts.control_port);
	if (cfd < 0) {
		agent_log(a, "control port %u: %s", a->opts.control_port, strerror(-cfd));
		return cfd;
	}
	pfd = agent_listen(&a->opts, a->opts.proxy_port);
	if (pfd < 0) {
		agent_log(a, "proxy port %u: %s", a->opts.proxy_port, strerror(-pfd));
		close(cfd);
		return pfd;
	}
	ret = vpn_init(a);
	if (!ret)
		ret = auth_init(a);
	if (!ret)
		ret = ctl_init(a, cfd);
	if (!ret)
		ret = proxy_init(a, pfd);
	if (ret) {
		agent_log(a, "setup: %s", strerror(-ret));
		return ret;
	}
	if (a->opts.vsock)
		agent_log(a, "listening (vsock) control port %u, proxy port %u",
			  a->opts.control_port, a->opts.proxy_port);
	else
		agent_log(a, "listening (tcp %s) control port %u, proxy port %u", a->opts.listen,
			  a->opts.control_port, a->opts.proxy_port);
	return 0;
}

int main(int argc, char **argv)
{
	struct agent a = {
		.opts = {
			.vsock = true,
			.listen = "127.0.0.1",
			.control_port = MVM_AGENT_PORT,
			.proxy_port = MVM_PROXY_PORT,
			.auth_secret_fd = -1,
			.state_dir = "/var/lib/microvm-agent",
			.run_dir = "/run/agent",
			.openvpn = "/usr/sbin/openvpn",
			.tun_dev = "tun0",
			.connect_timeout_s = 10,
			.vpn_timeout_s = 60,
			.ctl_idle_s = AGENT_CTL_IDLE_S,
		},
		.epfd = -1,
		.quit = -1,
	};
	int ret;

	setvbuf(stderr, NULL, _IOLBF, 0);
	ret = parse_args(argc, argv, &a.opts);
	if (ret)
		return ret > 0 ? 0 : 1;
	if (setup(&a) || agent_sandbox(&a)) {
		/* the key and the secret are wiped on every way out */
		auth_fini(&a);
		return 1;
	}
	agent_loop_run(&a);
	vpn_shutdown(&a);
	if (a.quit == AGENT_EXIT_POWEROFF) {
		ctl_flush_all(&a, 1000);
		if (a.opts.poweroff_on_shutdown) {
			agent_log(&a, "powering off");
			sync();
			reboot(RB_POWER_OFF);
			agent_log(&a, "reboot(RB_POWER_OFF): %s", strerror(errno));
		}
	}
	agent_log(&a, "exit %d", a.quit);
	auth_fini(&a);
	ctl_fini(&a);
	proxy_fini(&a);
	vpn_fini(&a);
	agent_loop_fini(&a);
	return a.quit;
}
