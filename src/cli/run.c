/* SPDX-License-Identifier: MIT */
/*
 * run.c - `microvm run`: boot a kernel under KVM with the serial console on the terminal.
 *
 * The console is subscribed to stdout; stdin is forwarded to the guest's UART.  When stdin
 * is a terminal it is put in raw mode (so Ctrl-C reaches the guest) and Ctrl-] quits, like
 * telnet.  The process exit status says how the guest ended (see run_usage()).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "microvm/runtime.h"

#define RUN_ESCAPE	0x1d	/* Ctrl-] */
#define RUN_MIN_MEM_MIB	32	/* the KVM backend's minimum (KVM_MIN_MEM_MIB) */

/* Exit statuses of `microvm run` beyond the shared ones. */
enum {
	RUN_EXIT_REBOOT = 3,
	RUN_EXIT_PANIC = 4,
	RUN_EXIT_KILLED = 5,
};

static volatile sig_atomic_t run_signalled;

static void run_on_signal(int sig)
{
	run_signalled = sig;
}

static void run_usage(FILE *out)
{
	fprintf(out,
		"usage: microvm run [--kernel FILE] [--initrd FILE] [--cmdline ARGS] [--mem MiB]\n"
		"                   [--cpus N] [--vsock-uds PATH] [--cid N] [--net]\n"
		"                   [--net-host-loopback] [--quiet] [--stats]\n"
		"\n"
		"Boot a Linux kernel in a KVM micro-VM with its serial console on this terminal.\n"
		"\n"
		"Options:\n"
		"  --kernel FILE     vmlinux (ELF) or bzImage; default: $MICROVM_KERNEL, else the\n"
		"                    project's kernel from 'make kernel' (cached in\n"
		"                    ${MICROVM_CACHE:-~/.cache/microvm}), else $datadir/microvm/vmlinux\n"
		"  --initrd FILE     initramfs (cpio, optionally compressed); without --kernel and\n"
		"                    --initrd: $MICROVM_INITRD, else the image from 'make image',\n"
		"                    else $datadir/microvm/initramfs.cpio.gz\n"
		"  --cmdline ARGS    kernel command line (default \"console=ttyS0 reboot=t panic=-1\",\n"
		"                    the full boot log; 'microvm up' adds quiet);\n"
		"                    virtio-mmio device arguments are appended\n"
		"  --mem MiB         guest memory (default 256; from 32 to this host's RAM in MiB)\n"
		"  --cpus N          vCPUs (default 1, 1..32)\n"
		"  --vsock-uds PATH  Unix socket bridge for the guest's vsock (Firecracker style):\n"
		"                    connect to PATH, send \"CONNECT <port>\\n\", read \"OK <n>\\n\";\n"
		"                    guest connections to host port P go to PATH_P\n"
		"  --cid N           the guest's vsock context id (default 3)\n"
		"  --net             user-mode networking (libslirp, no root needed): a virtio-net\n"
		"                    device; the guest is 10.0.2.15/24 (DHCP), gateway 10.0.2.2,\n"
		"                    DNS 10.0.2.3; MAC 52:54:00:12:34:56\n"
		"  --net-host-loopback  with --net: the gateway 10.0.2.2 is this host's 127.0.0.1.\n"
		"                    RISK: the guest then reaches every service listening on this\n"
		"                    host's loopback (databases, agents, the SOCKS proxy); off by\n"
		"                    default\n"
		"  --quiet           no notices on stderr (the PVM notice, the exit line)\n"
		"  --stats           at exit, print device statistics on stderr, one line each\n"
		"                    (\"virtio-rng: N bytes\": entropy the guest took)\n"
		"  -h, --help        this text\n"
		"\n"
		"Console: when stdin is a terminal it is switched to raw mode; press Ctrl-] to quit.\n"
		"\n"
		"Exit status:\n"
		"  0  the guest powered off\n"
		"  1  error (bad kernel, no /dev/kvm, the VMM gave up)   2  bad command line\n"
		"  3  the guest rebooted (microvm does not restart it)\n"
		"  4  the guest kernel panicked\n"
		"  5  stopped from here (Ctrl-], SIGINT, SIGTERM)\n"
		"\n"
		"Example:\n"
		"  microvm run --kernel vmlinux --initrd initramfs.cpio --mem 256 --cpus 2\n");
}

/**
 * run_parse_u32() - a decimal number within [@min, @max], or a one-line error
 * Return: 0, or -1 after printing the error.
 */
static int run_parse_u32(const char *opt, const char *s, unsigned long min, unsigned long max,
			 uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "microvm run: %s must be a number from %lu to %lu, not '%s'\n",
			opt, min, max, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/**
 * run_host_mib() - this host's RAM in MiB: the largest --mem (1 << 24 if unknown)
 */
static unsigned long run_host_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psz <= 0)
		return 1UL << 24;
	return (unsigned long)(((uint64_t)pages * (uint64_t)psz) >> 20);
}

/**
 * run_forward_input() - copy stdin to the guest until it stops; Ctrl-] (tty only) kills it
 * @vm:		running VM
 * @tty:	stdin is a terminal in raw mode
 */
static void run_forward_input(mvm_vm *vm, int tty)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	int in_open = 1;
	uint8_t buf[256];
	ssize_t n, i, off;
	long w;

	while (mvm_vm_wait(vm, 0, NULL) == -ETIMEDOUT) {
		if (run_signalled) {
			mvm_vm_kill(vm);
			break;
		}
		if (!in_open || poll(&pfd, 1, 100) <= 0 || !(pfd.revents & (POLLIN | POLLHUP))) {
			if (!in_open)
				mvm_vm_wait(vm, 100, NULL);
			continue;
		}
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			in_open = 0;
			continue;
		}
		for (i = 0; tty && i < n; i++) {
			if (buf[i] == RUN_ESCAPE) {
				mvm_vm_kill(vm);
				return;
			}
		}
		for (off = 0; off < n;) {	/* the UART FIFO may be full: retry briefly */
			w = mvm_console_write(vm, buf + off, (size_t)(n - off));
			if (w < 0)
				break;
			off += w;
			if (off < n && mvm_vm_wait(vm, 10, NULL) == 0)
				break;
		}
	}
}

/**
 * run_status() - the process exit status for an exit reason
 */
static int run_status(enum mvm_exit_reason r)
{
	switch (r) {
	case MVM_EXIT_POWEROFF:	return CLI_EXIT_OK;
	case MVM_EXIT_REBOOT:	return RUN_EXIT_REBOOT;
	case MVM_EXIT_PANIC:	return RUN_EXIT_PANIC;
	case MVM_EXIT_KILLED:	return RUN_EXIT_KILLED;
	case MVM_EXIT_ERROR:
	case MVM_EXIT_NONE:
	default:		return CLI_EXIT_FAIL;
	}
}

/**
 * cli_run() - `microvm run`
 * Return: exit status (see run_usage()).
 */
int cli_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'n' },
		{ "vsock-uds", required_argument, NULL, 'u' },
		{ "cid", required_argument, NULL, 'C' },
		{ "net", no_argument, NULL, 'N' },
		{ "net-host-loopback", no_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "stats", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct termios saved, raw;
	struct mvm_config cfg;
	enum mvm_exit_reason reason = MVM_EXIT_NONE;
	struct sigaction sa;
	char stats[512];
	int c, tty, status, want_stats = 0;
	mvm_vm *vm;

	mvm_config_init(&cfg);
	cfg.backend = MVM_BACKEND_KVM;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel_path = optarg; break;
		case 'i': cfg.initrd_path = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'u': cfg.vsock_uds_path = optarg; break;
		case 'q': cfg.quiet = true; break;
		case 's': want_stats = 1; break;
		case 'N': cfg.net = true; break;
		case 'L': cfg.net = cfg.net_host_loopback = true; break;
		case 'm':
			if (run_parse_u32("--mem", optarg, RUN_MIN_MEM_MIB, run_host_mib(),
					  &cfg.mem_mib))
				return CLI_EXIT_USAGE;
			break;
		case 'n':
			if (run_parse_u32("--cpus", optarg, 1, 32, &cfg.cpus))
				return CLI_EXIT_USAGE;
			break;
		case 'C':	/* 0-2 are reserved, 2^32-1 is VMADDR_CID_ANY */
			if (run_parse_u32("--cid", optarg, 3, 0xfffffffeUL, &cfg.guest_cid))
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			run_usage(stdout);
			return CLI_EXIT_OK;
		default:
			fprintf(stderr, "microvm run: bad option '%s' (see 'microvm run --help')\n",
				argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "microvm run: unexpected argument '%s' (see 'microvm run --help')\n",
			argv[optind]);
		return CLI_EXIT_USAGE;
	}
	/*
	 * The full boot log: run is where a boot is looked at (the library's default line adds
	 * `quiet`, which makes the appliance boot faster; docs/kvm.md).
	 */
	if (!cfg.cmdline)
		cfg.cmdline = "console=ttyS0 reboot=t panic=-1";
	/* Without --kernel the backend finds the project's kernel and image (docs/kvm.md). */
	vm = mvm_vm_new(&cfg);
	if (!vm) {
		fprintf(stderr, "microvm run: %s\n", mvm_last_error());
		return CLI_EXIT_FAIL;
	}
	if (mvm_console_subscribe_fd(vm, STDOUT_FILENO) < 0) {
		fprintf(stderr, "microvm run: cannot attach the console\n");
		mvm_vm_free(vm);
		return CLI_EXIT_FAIL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = run_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		raw = saved;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST;	/* our own notices still get \r\n */
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		if (!cfg.quiet)
			fprintf(stderr, "microvm: console attached, press Ctrl-] to quit\r\n");
	}

	if (mvm_vm_start(vm) < 0) {
		if (tty)
			tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		fprintf(stderr, "microvm run: %s\n", mvm_last_error());
		mvm_vm_free(vm);
		return CLI_EXIT_FAIL;
	}
	run_forward_input(vm, tty);
	mvm_vm_wait(vm, -1, &reason);
	mvm_console_drain(vm, 2000);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	status = run_status(reason);
	if (!cfg.quiet || status == CLI_EXIT_FAIL)
		fprintf(stderr, "\nmicrovm: guest stopped: %s%s%s%s\n", mvm_exit_reason_name(reason),
			mvm_vm_exit_detail(vm)[0] ? " (" : "", mvm_vm_exit_detail(vm),
			mvm_vm_exit_detail(vm)[0] ? ")" : "");
	if (want_stats && mvm_vm_stats(vm, stats, sizeof(stats)) > 0)
		fprintf(stderr, "%s", stats);
	mvm_vm_free(vm);
	return status;
}
