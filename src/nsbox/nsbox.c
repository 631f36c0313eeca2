// SPDX-License-Identifier: MIT
/**
 * DOC: Theory of operation - the namespace backend ("nsbox")
 *
 * Where KVM cannot run the guest's user space (no /dev/kvm, or a PVM host), the same guest
 * root file system runs as a box of Linux namespaces instead of a VM: new user (rootless where
 * the host allows it), mount, PID, UTS, IPC and network namespaces, pivot_root into the
 * rootfs, and the agent as the main program.  To the rest of libmicrovm it is just another
 * backend: the same lifecycle, console and vsock client.
 *
 * Processes (see box.c for the two in the middle):
 *
 *   host process (this file)            box thread: console, exit; slirp thread: TAP
 *     `- S  supervisor, in the box's user/net/uts/ipc namespaces, outside its PID namespace
 *          `- I  the box's PID 1: mounts, pivot_root, init duties
 *               `- the agent (microvm-agent --transport tcp --listen 127.0.0.1)
 *
 * Network: S creates a TAP device eth0 in the box's network namespace and hands its fd to
 * the host over a SOCK_SEQPACKET control socket (SCM_RIGHTS).  The libslirp module
 * (src/net/slirp.c) serves it from its own thread: frames read from the TAP go into slirp,
 * slirp's frames for the guest are written back to it.  The box sees 10.0.2.15 behind
 * gateway 10.0.2.2 and reaches whatever the host can, with no privilege, no host interface
 * and no host route.
 *
 * Authentication: the agent on TCP accepts only connections that prove its secret
 * (docs/protocol.md).  create() draws a fresh secret per box, puts it in a memfd that the
 * box's program inherits as NSBOX_SECRET_FD (the default agent runs with --auth-secret-fd 4;
 * nothing on a command line, nothing on disk) and keys the vsock client with it, so every
 * stream returned by the client is authenticated.  A library user whose box program is not
 * the agent turns that off with mvm_vsock_set_secret(client, NULL).
 *
 * vsock: the agent listens on TCP inside the box.  The vsock client's connect asks S over
 * the control socket to connect to 127.0.0.1:port (S lives in the box's network namespace)
 * and receives the connected socket back.  Requests carry a sequence number so that an
 * answer arriving after its caller timed out is recognised and dropped.
 *
 * Lifecycle: request_stop sends SIGTERM to the box's PID 1 (through a pidfd, so never to a
 * recycled pid), which forwards it to every process in the box; kill sends SIGKILL, which
 * takes the whole PID namespace down.  S exits after PID 1 with a status that encodes PID
 * 1's; the box thread sees S's pidfd become readable, waits for PID 1's pidfd too (readable
 * only once every process in the box is gone), drains the console and reports the exit.
 * The namespaces, and every mount in them, disappear with their last process; destroy then
 * removes the private rootfs copy.
 *
 * Sandbox: the box thread, which reads what the box prints, drops its capabilities and
 * installs nsbox_thread_syscalls[] (the slirp thread has its own, src/net/slirp.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "microvm/vsock.h"
#include "mvm_auth.h"
#include "net/slirp.h"
#include "nsbox/nsbox.h"
#include "runtime/backend.h"
#include "runtime/error.h"
#include "runtime/vsock_client.h"
#include "sandbox/sandbox.h"

#define NSBOX_AGENT		"/usr/bin/microvm-agent"
#define NSBOX_START_TIMEOUT_MS	10000

/**
 * struct nsbox - one box
 * @vm:		the runtime's VM
 * @net:	attach user-mode networking
 * @net_host_loopback: the slirp gateway is the host's 127.0.0.1 (mvm_config)
 * @rootfs_path: the configured rootfs (for the fallback to a private copy)
 * @fs:		the box's root (see rootfs.c)
 * @argv:	the main program and its arguments
 * @spid:	the supervisor S
 * @s_pidfd:	pidfd of S
 * @i_pidfd:	pidfd of the box's PID 1
 * @ctl:	control socket to S
 * @console_rd:	read end of the box's stdout/stderr
 * @stdin_wr:	the host's end of the box's stdin
 * @tap:	eth0's TAP fd, or -1
 * @wake:	eventfd that ends the box thread early (destroy before exit)
 * @slirp:	user-mode network stack, or NULL
 * @vsock:	the vsock client over the control socket
 * @secret:	the agent's auth secret (64 hex characters), keyed into @vsock
 * @secret_fd:	memfd with @secret and a newline, inherited by the box's program
 * @thread:	the box thread
 * @started:	S runs and @thread exists
 * @ctl_lock:	serialises requests on @ctl
 * @seq:	last request sequence number
 * @lock:	protects @killed and @exited
 * @killed:	kill() was called
 * @exited:	the box has been reported as exited
 */
struct nsbox {
	mvm_vm *vm;
	bool net;
	bool net_host_loopback;
	char *rootfs_path;
	struct nsbox_rootfs fs;
	char *argv[NSBOX_MAX_ARGS + 1];

	pid_t spid;
	int s_pidfd;
	int i_pidfd;
	int ctl;
	int console_rd;
	int stdin_wr;
	int tap;
	int wake;
	struct mvm_slirp *slirp;
	mvm_vsock *vsock;
	char secret[MVM_SECRET_HEX_LEN + 1];
	int secret_fd;
	pthread_t thread;
	bool started;

	pthread_mutex_t ctl_lock;
	uint32_t seq;
	pthread_mutex_t lock;
	bool killed;
	bool exited;
};

/**
 * nsbox_pidfd_signal() - signal a process through its pidfd (never a recycled pid)
 * @pidfd:	pidfd, or -1
 * @sig:	signal
 *
 * Return: 0 (also when the process is already gone), -ESRCH without a pidfd, or -errno.
 */
static int nsbox_pidfd_signal(int pidfd, int sig)
{
	if (pidfd < 0)
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0))
		return errno == ESRCH ? 0 : -errno;	/* already gone: fine */
	return 0;
}

static void nsbox_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int64_t nsbox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- vsock transport: connect from inside the box through S ---- */

/**
 * nsbox_vsock_connect() - &mvm_vsock_transport.connect: a stream to the box's 127.0.0.1:@port
 * @ctx:	the box
 * @port:	TCP port inside the box
 * @timeout_ms:	negative: no limit
 *
 * Return: a connected socket, or -errno (-ECONNREFUSED, -ETIMEDOUT, -ENOTCONN when the box
 * is not running).
 */
static int nsbox_vsock_connect(void *ctx, uint32_t port, int timeout_ms)
{
	struct nsbox *nb = ctx;
	struct nsbox_req req = { .port = port, .timeout_ms = timeout_ms };
	int64_t deadline = timeout_ms < 0 ? -1 : nsbox_now_ms() + timeout_ms + 1000;
	int ret;

	pthread_mutex_lock(&nb->ctl_lock);
	if (nb->ctl < 0) {
		ret = -ENOTCONN;
		goto out;
	}
	req.seq = ++nb->seq;
	ret = nsbox_send_fds(nb->ctl, &req, sizeof(req), NULL, 0);
	if (ret)
		goto out;
	for (;;) {
		struct pollfd p = { .fd = nb->ctl, .events = POLLIN };
		struct nsbox_resp resp;
		int wait = -1, fd;
		ssize_t n;

		if (deadline >= 0) {
			int64_t left = deadline - nsbox_now_ms();

			if (left <= 0) {
				ret = -ETIMEDOUT;
				goto out;
			}
			wait = (int)left;
		}
		n = poll(&p, 1, wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;	/* deadline checked above */
		n = nsbox_recv_fds(nb->ctl, &resp, sizeof(resp), &fd, 1);
		if (n == 0) {
			ret = -ECONNRESET;	/* the box is gone */
			goto out;
		}
		if (n < 0 && n != -EAGAIN && n != -EINTR) {
			ret = (int)n;
			goto out;
		}
		if (n != sizeof(resp) || resp.seq != req.seq) {
			if (fd >= 0)
				close(fd);	/* a late answer to a timed-out request */
			continue;
		}
		if (resp.result == 0 && fd < 0)
			ret = -EPROTO;
		else
			ret = resp.result ? resp.result : fd;
		if (resp.result && fd >= 0)
			close(fd);
		goto out;
	}
out:
	pthread_mutex_unlock(&nb->ctl_lock);
	return ret;
}

static const struct mvm_vsock_transport nsbox_vsock_ops = {
	.connect = nsbox_vsock_connect,
};

/* ---- the box thread ---- */

/**
 * nsbox_console_read() - forward console bytes to the runtime
 * @nb:		the box
 *
 * Return: false at EOF (every process in the box has closed its stdout).
 */
static bool nsbox_console_read(struct nsbox *nb)
{
	char buf[4096];
	ssize_t n = read(nb->console_rd, buf, sizeof(buf));

	if (n > 0) {
		mvm_vm_console_output(nb->vm, buf, (size_t)n);
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/**
 * nsbox_exit_reason() - what S's exit status says about the box
 * @nb:		the box
 * @status:	S's wait status
 * @detail:	filled with a line for the user
 * @len:	size of @detail
 *
 * S exits with PID 1's exit code, or 128 + the signal that ended it.  PID 1 passes on the
 * program's 0 or 100 (power off) and 101 (reboot).  In a PID namespace, reboot(2) ends PID 1
 * with SIGINT (power off, halt) or SIGHUP (restart).
 *
 * Return: the reason.
 */
static enum mvm_exit_reason nsbox_exit_reason(struct nsbox *nb, int status, char *detail,
					      size_t len)
{
	bool killed;
	int code;

	pthread_mutex_lock(&nb->lock);
	killed = nb->killed;
	pthread_mutex_unlock(&nb->lock);
	if (!WIFEXITED(status)) {
		snprintf(detail, len, "box supervisor killed by signal %d", WTERMSIG(status));
		return killed ? MVM_EXIT_KILLED : MVM_EXIT_ERROR;
	}
	code = WEXITSTATUS(status);
	if (code == 0 || code == NSBOX_EXIT_POWEROFF || code == 128 + SIGINT ||
	    code == 128 + SIGTERM)
		return MVM_EXIT_POWEROFF;
	if (code == NSBOX_EXIT_REBOOT || code == 128 + SIGHUP)
		return MVM_EXIT_REBOOT;
	if (code == 128 + SIGKILL && killed)
		return MVM_EXIT_KILLED;
	if (code > 128)
		snprintf(detail, len, "%s killed by signal %d", nb->argv[0], code - 128);
	else
		snprintf(detail, len, "%s exited with status %d", nb->argv[0], code);
	return killed ? MVM_EXIT_KILLED : MVM_EXIT_ERROR;
}

/**
 * nsbox_finish() - S has exited: make sure the whole box is gone, then report
 * @nb:		the box
 */
static void nsbox_finish(struct nsbox *nb)
{
	struct pollfd p;
	char detail[256] = "";
	enum mvm_exit_reason reason;
	int64_t until;
	int status = 0;

	while (waitpid(nb->spid, &status, 0) < 0 && errno == EINTR)
		;
	/* PID 1's pidfd turns readable only after every process of its namespace is reaped. */
	p.fd = nb->i_pidfd;
	p.events = POLLIN;
	if (nb->i_pidfd >= 0 && poll(&p, 1, 2000) <= 0) {
		nsbox_pidfd_signal(nb->i_pidfd, SIGKILL);
		poll(&p, 1, 5000);
	}
	/* The rest of the console, until every writer has closed it. */
	until = nsbox_now_ms() + 500;
	p.fd = nb->console_rd;
	while (nsbox_now_ms() < until && poll(&p, 1, 100) > 0 && nsbox_console_read(nb))
		;
	reason = nsbox_exit_reason(nb, status, detail, sizeof(detail));
	pthread_mutex_lock(&nb->ctl_lock);
	nsbox_close(&nb->ctl);	/* no more connects: fail fast with -ENOTCONN */
	pthread_mutex_unlock(&nb->ctl_lock);
	pthread_mutex_lock(&nb->lock);
	nb->exited = true;
	pthread_mutex_unlock(&nb->lock);
	mvm_vm_exited(nb->vm, reason, detail[0] ? detail : NULL);
}

/* The box thread, beside the common list (src/sandbox/sandbox.c). */
static const int nsbox_thread_syscalls[] = {
	SANDBOX_SYS(poll),		/* nsbox_thread(), nsbox_finish() */
	SANDBOX_SYS(ppoll),
	SANDBOX_SYS(wait4),		/* waitpid(): S's exit status */
	SANDBOX_SYS(pidfd_send_signal),	/* SIGKILL for a PID 1 that lingers */
};

/**
 * nsbox_thread() - one poll loop for the console and the box's end
 * @arg:	the box
 *
 * Return: NULL.
 */
static void *nsbox_thread(void *arg)
{
	struct nsbox *nb = arg;
	struct sandbox_list list = SANDBOX_LIST(nsbox_thread_syscalls);
	enum { P_WAKE, P_EXIT, P_CONSOLE, P_N };
	struct pollfd p[P_N] = {
		[P_WAKE] = { .fd = nb->wake, .events = POLLIN },
		[P_EXIT] = { .fd = nb->s_pidfd, .events = POLLIN },
		[P_CONSOLE] = { .fd = nb->console_rd, .events = POLLIN },
	};

	prctl(PR_SET_NAME, "mvm-nsbox");
	if (sandbox_thread("nsbox thread", &list, 1))
		return NULL;	/* reported; the box then runs without console and exit report */
	for (;;) {
		if (poll(p, P_N, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[P_CONSOLE].revents && !nsbox_console_read(nb))
			p[P_CONSOLE].fd = -1;
		if (p[P_EXIT].revents) {
			nsbox_finish(nb);
			break;
		}
		if (p[P_WAKE].revents)
			break;
	}
	return NULL;
}

/* ---- backend ops ---- */

/**
 * nsbox_usable() - &mvm_backend_ops.usable: can this process create a box here?
 * @why:	filled with a reason when not
 * @why_len:	size of @why
 *
 * Return: 1 or 0.
 */
static int nsbox_usable(char *why, size_t why_len)
{
	return nsbox_probe(why, why_len);
}

/**
 * nsbox_set_argv() - the main program: @box_argv, or the agent in TCP mode
 * @nb:		the box (root prepared)
 * @box_argv:	from the config, or NULL
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int nsbox_set_argv(struct nsbox *nb, const char *const *box_argv)
{
	static const char *const agent[] = {
		NSBOX_AGENT, "--transport", "tcp", "--listen", "127.0.0.1",
		"--auth-secret-fd", "4", NULL,	/* NSBOX_SECRET_FD */
	};
	const char *const *a = box_argv ? box_argv : agent;
	char path[4096];
	struct stat st;
	size_t i;

	if (!a[0] || a[0][0] != '/')
		return mvm_set_error(-EINVAL, "nsbox: the box's program needs an absolute path");
	for (i = 0; a[i]; i++) {
		if (i == NSBOX_MAX_ARGS)
			return mvm_set_error(-E2BIG, "nsbox: more than %d arguments", NSBOX_MAX_ARGS);
		nb->argv[i] = strdup(a[i]);
		if (!nb->argv[i])
			return mvm_set_error(-ENOMEM, "nsbox: out of memory");
	}
	snprintf(path, sizeof(path), "%s%s", nb->fs.lower ? nb->fs.lower : nb->fs.root, a[0]);
	if (lstat(path, &st))
		return mvm_set_error(-ENOENT, "nsbox: the rootfs has no %s", a[0]);
	return 0;
}

/**
 * nsbox_free() - release what create() allocated (the rootfs's private directory too)
 * @nb:		the box, not running
 */
static void nsbox_free(struct nsbox *nb)
{
	size_t i;

	nsbox_rootfs_release(&nb->fs);
	free(nb->rootfs_path);
	for (i = 0; nb->argv[i]; i++)
		free(nb->argv[i]);
	if (nb->secret_fd >= 0)
		close(nb->secret_fd);
	mvm_auth_cleanse(nb->secret, sizeof(nb->secret));
	pthread_mutex_destroy(&nb->ctl_lock);
	pthread_mutex_destroy(&nb->lock);
	free(nb);
}

/**
 * nsbox_make_secret() - a fresh auth secret for the box's agent, in @nb->secret and a memfd
 * @nb:		the box
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int nsbox_make_secret(struct nsbox *nb)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[MVM_SECRET_HEX_LEN / 2];
	char line[MVM_SECRET_HEX_LEN + 1];
	int ret = 0;

	if (mvm_auth_random(rnd, sizeof(rnd)))
		return mvm_set_error(-EIO, "nsbox: no random numbers for the agent's secret");
	for (size_t i = 0; i < sizeof(rnd); i++) {
		nb->secret[2 * i] = hex[rnd[i] >> 4];
		nb->secret[2 * i + 1] = hex[rnd[i] & 15];
	}
	nb->secret[MVM_SECRET_HEX_LEN] = '\0';
	memcpy(line, nb->secret, MVM_SECRET_HEX_LEN);
	line[MVM_SECRET_HEX_LEN] = '\n';
	nb->secret_fd = memfd_create("microvm-agent-secret", MFD_CLOEXEC);
	if (nb->secret_fd < 0 || write(nb->secret_fd, line, sizeof(line)) != (ssize_t)sizeof(line))
		ret = mvm_set_error(-errno, "nsbox: cannot hold the agent's secret: %s",
				    strerror(errno));
	mvm_auth_cleanse(rnd, sizeof(rnd));
	mvm_auth_cleanse(line, sizeof(line));
	return ret;
}

/**
 * nsbox_create() - &mvm_backend_ops.create: check the config, prepare the root
 * @vm:		the runtime's VM
 * @cfg:	config: rootfs_path (NULL: the newest guest image), box_argv, net
 * @priv:	set to the box
 *
 * An archive is unpacked into the cache here (once per archive version).
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int nsbox_create(mvm_vm *vm, const struct mvm_config *cfg, void **priv)
{
	struct nsbox *nb = calloc(1, sizeof(*nb));
	int ret;

	if (!nb)
		return mvm_set_error(-ENOMEM, "nsbox: out of memory");
	nb->vm = vm;
	nb->net = cfg->net;
	nb->net_host_loopback = cfg->net_host_loopback;
	nb->spid = -1;
	nb->s_pidfd = nb->i_pidfd = nb->ctl = nb->console_rd = nb->stdin_wr = -1;
	nb->tap = nb->wake = nb->secret_fd = -1;
	pthread_mutex_init(&nb->ctl_lock, NULL);
	pthread_mutex_init(&nb->lock, NULL);
	nb->rootfs_path = cfg->rootfs_path ? strdup(cfg->rootfs_path) : nsbox_rootfs_default(cfg->quiet);
	if (!nb->rootfs_path) {
		ret = mvm_set_error(cfg->rootfs_path ? -ENOMEM : -ENOENT,
				    "nsbox: no rootfs given and no guest image built "
				    "(make image, or a directory or rootfs.tar.gz)");
		goto err;
	}
	ret = nsbox_make_secret(nb);
	if (!ret)
		ret = nsbox_rootfs_prepare(nb->rootfs_path, &nb->fs, true);
	if (!ret)
		ret = nsbox_set_argv(nb, cfg->box_argv);
	if (ret)
		goto err;
	*priv = nb;
	return 0;
err:
	nsbox_free(nb);
	return ret;
}

/**
 * nsbox_wait_ready() - S's first message: the box runs, or why not
 * @nb:		the box
 *
 * Return: 0 with @nb's pidfd and TAP filled, or -errno with mvm_last_error() set.
 */
static int nsbox_wait_ready(struct nsbox *nb)
{
	struct pollfd p = { .fd = nb->ctl, .events = POLLIN };
	struct nsbox_ready ready;
	int fds[2];
	ssize_t n;

	n = poll(&p, 1, NSBOX_START_TIMEOUT_MS);
	if (n <= 0)
		return mvm_set_error(-ETIMEDOUT, "nsbox: the box did not start");
	n = nsbox_recv_fds(nb->ctl, &ready, sizeof(ready), fds, 2);
	if (n != sizeof(ready)) {
		nsbox_close(&fds[0]);
		nsbox_close(&fds[1]);
		return mvm_set_error(-EIO, "nsbox: the box's supervisor died during setup");
	}
	ready.msg[sizeof(ready.msg) - 1] = '\0';
	if (ready.result) {
		nsbox_close(&fds[0]);
		nsbox_close(&fds[1]);
		return mvm_set_error(ready.result < 0 ? ready.result : -EIO, "nsbox: %s",
				     ready.msg);
	}
	if (fds[0] < 0 || (nb->net && fds[1] < 0)) {
		nsbox_close(&fds[0]);
		nsbox_close(&fds[1]);
		return mvm_set_error(-EPROTO, "nsbox: the supervisor sent no descriptors");
	}
	nb->i_pidfd = fds[0];
	nb->tap = fds[1];
	return 0;
}

/**
 * nsbox_spawn() - fork S with the descriptors of the box's spec
 * @nb:		the box
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int nsbox_spawn(struct nsbox *nb)
{
	struct nsbox_spec spec = {
		.root = nb->fs.root, .root_ro = nb->fs.ro, .lower = nb->fs.lower,
		.upper = nb->fs.upper, .work = nb->fs.work, .argv = nb->argv, .net = nb->net,
		.secret_fd = nb->secret_fd,
		.userns = true, .uid = geteuid(), .gid = getegid(),
	};
	int ctl[2], con[2], in[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl))
		return mvm_set_error(-errno, "nsbox: socketpair: %s", strerror(errno));
	if (pipe2(con, O_CLOEXEC)) {
		ret = mvm_set_error(-errno, "nsbox: pipe: %s", strerror(errno));
		goto err_ctl;
	}
	/* stdin is a socket so that writing to a dead box is EPIPE, never SIGPIPE. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in)) {
		ret = mvm_set_error(-errno, "nsbox: socketpair: %s", strerror(errno));
		goto err_con;
	}
	shutdown(in[0], SHUT_WR);
	spec.ctl_fd = ctl[1];
	spec.console_fd = con[1];
	spec.stdin_fd = in[0];

	nb->spid = fork();
	if (nb->spid < 0) {
		ret = mvm_set_error(-errno, "nsbox: fork: %s", strerror(errno));
		goto err_in;
	}
	if (nb->spid == 0)
		nsbox_supervisor(&spec);
	close(ctl[1]);
	close(con[1]);
	close(in[0]);
	nb->ctl = ctl[0];
	nb->console_rd = con[0];
	nb->stdin_wr = in[1];
	fcntl(nb->console_rd, F_SETFL, O_NONBLOCK);
	fcntl(nb->stdin_wr, F_SETFL, O_NONBLOCK);
	nb->s_pidfd = (int)syscall(SYS_pidfd_open, nb->spid, 0);
	if (nb->s_pidfd < 0)
		return mvm_set_error(-errno, "nsbox: pidfd_open: %s", strerror(errno));
	return 0;

err_in:
	close(in[0]);
	close(in[1]);
err_con:
	close(con[0]);
	close(con[1]);
err_ctl:
	close(ctl[0]);
	close(ctl[1]);
	return ret;
}

/**
 * nsbox_reap_failed() - start failed after S was forked: end S and forget the box
 * @nb:		the box
 */
static void nsbox_reap_failed(struct nsbox *nb)
{
	nsbox_pidfd_signal(nb->i_pidfd, SIGKILL);
	if (nb->spid > 0) {
		kill(nb->spid, SIGKILL);
		while (waitpid(nb->spid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (nb->i_pidfd >= 0) {
		struct pollfd p = { .fd = nb->i_pidfd, .events = POLLIN };

		poll(&p, 1, 5000);
	}
	nb->spid = -1;
	nsbox_close(&nb->s_pidfd);
	nsbox_close(&nb->i_pidfd);
	nsbox_close(&nb->ctl);
	nsbox_close(&nb->console_rd);
	nsbox_close(&nb->stdin_wr);
	nsbox_close(&nb->tap);
	nsbox_close(&nb->wake);
}

/**
 * nsbox_start() - &mvm_backend_ops.start: run the box, attach slirp, start the box thread
 * @priv:	the box
 *
 * Returns once the box's program has been exec'd (or failed to be).  With an overlay root
 * that cannot be mounted, retries once on a private unpacked copy.
 *
 * Return: 0 or -errno with mvm_last_error() set.
 */
static int nsbox_start(void *priv)
{
	struct nsbox *nb = priv;
	int ret;

	if (nb->started)
		return mvm_set_error(-EBUSY, "nsbox: already started");
	ret = nsbox_spawn(nb);
	if (!ret)
		ret = nsbox_wait_ready(nb);
	if (ret && nb->fs.lower) {
		/* No overlayfs here (old kernel, odd file system): a private copy instead. */
		nsbox_reap_failed(nb);
		nsbox_rootfs_release(&nb->fs);
		ret = nsbox_rootfs_prepare(nb->rootfs_path, &nb->fs, false);
		if (!ret)
			ret = nsbox_spawn(nb);
		if (!ret)
			ret = nsbox_wait_ready(nb);
	}
	if (ret)
		goto err;
	if (nb->net) {
		struct mvm_slirp_cfg scfg;

		mvm_slirp_cfg_init(&scfg);
		scfg.mtu = NSBOX_MTU;
		scfg.host_loopback = nb->net_host_loopback;
		nb->slirp = mvm_slirp_new_fd(&scfg, nb->tap);
		if (!nb->slirp) {
			ret = -EIO;
			goto err;
		}
	}
	nb->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (nb->wake < 0) {
		ret = mvm_set_error(-errno, "nsbox: eventfd: %s", strerror(errno));
		goto err;
	}
	ret = sandbox_thread_start(&nb->thread, nsbox_thread, nb);
	if (ret) {
		mvm_set_error(ret, "nsbox: cannot start thread");
		goto err;
	}
	nb->started = true;
	return 0;
err:
	nsbox_reap_failed(nb);
	mvm_slirp_free(nb->slirp);
	nb->slirp = NULL;
	return ret;
}

/**
 * nsbox_request_stop() - &mvm_backend_ops.request_stop: SIGTERM to the box's PID 1
 * @priv:	the box
 *
 * PID 1 passes it to every process in the box and exits when the program has.
 *
 * Return: 0 or -errno.
 */
static int nsbox_request_stop(void *priv)
{
	struct nsbox *nb = priv;

	return nsbox_pidfd_signal(nb->i_pidfd, SIGTERM);
}

/**
 * nsbox_kill() - &mvm_backend_ops.kill: SIGKILL to the box's PID 1 (and so to the box)
 * @priv:	the box
 *
 * Return: 0 or -errno.
 */
static int nsbox_kill(void *priv)
{
	struct nsbox *nb = priv;

	pthread_mutex_lock(&nb->lock);
	nb->killed = true;
	pthread_mutex_unlock(&nb->lock);
	return nsbox_pidfd_signal(nb->i_pidfd, SIGKILL);
}

/**
 * nsbox_console_write() - &mvm_backend_ops.console_write: bytes for the box's stdin
 * @priv:	the box
 * @data:	bytes
 * @len:	how many
 *
 * Return: bytes taken (never blocks), or -errno (-EAGAIN when nobody reads).
 */
static long nsbox_console_write(void *priv, const void *data, size_t len)
{
	struct nsbox *nb = priv;
	ssize_t n;

	if (nb->stdin_wr < 0)
		return -ENOTCONN;
	n = send(nb->stdin_wr, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n < 0 ? -errno : (long)n;
}

/**
 * nsbox_vsock() - &mvm_backend_ops.vsock: the client whose streams S dials inside the box
 * @priv:	the box
 *
 * Return: the client (owned by the box), or NULL with mvm_last_error() set.
 */
static mvm_vsock *nsbox_vsock(void *priv)
{
	struct nsbox *nb = priv;

	if (!nb->vsock) {
		nb->vsock = mvm_vsock_new(&nsbox_vsock_ops, nb);
		if (nb->vsock && mvm_vsock_set_secret(nb->vsock, nb->secret)) {
			/* no client without its key (mvm_last_error() says why) */
			mvm_vsock_free(nb->vsock);
			nb->vsock = NULL;
		} else if (nb->vsock) {
			vsock_set_peer(nb->vsock, "127.0.0.1 in the box");
		}
	}
	return nb->vsock;
}

/**
 * nsbox_destroy() - &mvm_backend_ops.destroy: kill if still running, wait, free everything
 * @priv:	the box
 */
static void nsbox_destroy(void *priv)
{
	struct nsbox *nb = priv;
	uint64_t one = 1;

	if (nb->started) {
		bool exited;

		pthread_mutex_lock(&nb->lock);
		exited = nb->exited;
		pthread_mutex_unlock(&nb->lock);
		if (!exited) {
			/* Not reported yet: kill, and let the thread see the end. */
			nsbox_kill(nb);
		} else if (write(nb->wake, &one, sizeof(one)) < 0) {
			/* the thread has finished anyway */
		}
		pthread_join(nb->thread, NULL);
	}
	mvm_vsock_free(nb->vsock);
	mvm_slirp_free(nb->slirp);
	nsbox_close(&nb->s_pidfd);
	nsbox_close(&nb->i_pidfd);
	nsbox_close(&nb->ctl);
	nsbox_close(&nb->console_rd);
	nsbox_close(&nb->stdin_wr);
	nsbox_close(&nb->tap);
	nsbox_close(&nb->wake);
	nsbox_free(nb);
}

const struct mvm_backend_ops mvm_nsbox_backend = {
	.name = "nsbox",
	.kind = MVM_BACKEND_NSBOX,
	.usable = nsbox_usable,
	.create = nsbox_create,
	.start = nsbox_start,
	.request_stop = nsbox_request_stop,
	.kill = nsbox_kill,
	.console_write = nsbox_console_write,
	.vsock = nsbox_vsock,
	.destroy = nsbox_destroy,
};
