/* SPDX-License-Identifier: MIT */
/*
 * vm.c - the KVM backend: a VM with guest RAM, the console UART, virtio-mmio devices, direct
 * Linux boot, and the reasons a guest stops; the same on x86-64 and arm64 hosts.
 *
 * Theory of operation
 * -------------------
 * create():  open /dev/kvm, KVM_CREATE_VM, the architecture's interrupt controller
 *            (kvm_arch_vm_init(): x86 irqchip + PIT, arm64 vGICv3); one anonymous mapping for
 *            all RAM, announced as the slots kvm_arch_ram_layout() says (x86: below the 3 GiB
 *            MMIO hole and from 4 GiB; arm64: one slot at 1 GiB); devices (the UART,
 *            kvm_arch_devices(), then the virtio-mmio devices of kvm_devices_add() in the
 *            slots of kvm_arch_mmio_slot()); kernel, initrd, command line and boot tables
 *            (kvm_arch_load_guest(): src/arch/x86 or src/arch/arm64); the vCPUs (cpu.c,
 *            kvm_arch_cpu_init()); finally kvm_arch_vm_ready() (arm64: vGIC init).
 * start():   one thread per vCPU.
 * stop:      kvm_vm_stop() records the first reason, tells the runtime (mvm_vm_exited()) and
 *            kicks every vCPU out of KVM_RUN.  Reasons:
 *              - triple fault (KVM_EXIT_SHUTDOWN; Linux's reboot=t), the i8042 reset command
 *                (reboot=k) and PSCI SYSTEM_RESET (arm64) -> REBOOT, or PANIC if the console showed "Kernel panic" first
 *                (with panic=-1 a panicking Linux reboots at once; under PVM that reboot
 *                may end in an emulation failure instead, also reported as PANIC);
 *              - poweroff -> POWEROFF: PSCI SYSTEM_OFF on arm64 (KVM_EXIT_SYSTEM_EVENT).
 *                On x86, without ACPI, Linux turns reboot(RB_POWER_OFF) into a
 *                halt: it prints "reboot: System halted" (or "reboot: Power down" when some
 *                driver can power off) and then halts every CPU with interrupts off.  The
 *                in-kernel LAPIC handles HLT itself, so userspace never sees the halt: we
 *                watch the console for those two lines instead (a KVM_EXIT_HLT with IF=0,
 *                possible only without the in-kernel LAPIC, counts too);
 *              - KVM errors (emulation failure, entry failure) -> ERROR;
 *              - kill -> KILLED.
 *            There is no graceful "please power off" signal for a guest without ACPI, so
 *            request_stop is not provided and mvm_vm_stop() kills.
 *
 * Devices: MMIO goes through kvm_mmio() over the table filled by kvm_add_mmio(), which takes
 * each device's slot and interrupt line from kvm_arch_mmio_slot() (x86: 0xd0000000 + i *
 * 0x1000, IRQ 5 + i, announced by "virtio_mmio.device=" tokens on the command line; arm64:
 * the slots of the device tree); x86 port I/O goes through src/kvm/x86/x86.c.  Interrupt
 * lines are driven with KVM_IRQ_LINE, as levels, numbered by kvm_arch_irq().
 *
 * PVM hosts (/sys/module/kvm_pvm): see docs/kvm.md.  The backend adds the
 * kernel arguments that let a stock kernel boot under PVM, says so once on stderr (unless
 * cfg.quiet), and reports itself unusable to MVM_BACKEND_AUTO because guest user space cannot
 * run there; asking for MVM_BACKEND_KVM explicitly still works (the kernel boots to init).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvm/kvm.h"
#include "runtime/backend.h"
#include "runtime/error.h"
#include "runtime/guest_files.h"

/* From kvm-here.md: what a stock kernel needs to boot under PVM. */
static const char kvm_pvm_args[] =
	"console=ttyS0 reboot=t panic=-1 noxsave "
	"clearcpuid=151,308,295,288,156,293,291,296,150,158,306,311,534,145,298";

/*
 * Without the caller's command line: `quiet` (console loglevel 4), because every console
 * byte is a trapped UART write - the guest kernel's ~150 boot lines were most of a nested
 * boot (docs/performance.md). What a user needs when a boot fails still shows: panics,
 * oopses and "reboot: System halted" are KERN_EMERG..KERN_ERR (the stop reasons above keep
 * working), and init and the agent write to the console themselves. `microvm run` (the tool
 * for looking at a boot) passes the same line without `quiet`.
 */
static const char kvm_default_cmdline[] = "console=ttyS0 reboot=t panic=-1 quiet";

/**
 * kvm_pvm_host() - is /dev/kvm provided by the kvm_pvm module?
 * Return: 1 if so (MICROVM_PVM=0/1 in the environment overrides, for tests), else 0.
 */
int kvm_pvm_host(void)
{
	const char *force = getenv("MICROVM_PVM");
	struct stat st;

	if (force && (force[0] == '0' || force[0] == '1'))
		return force[0] == '1';
	return stat("/sys/module/kvm_pvm", &st) == 0;
}

/**
 * kvm_cmdline_has() - is @tok a whole space-separated token of @s?
 */
static int kvm_cmdline_has(const char *s, const char *tok, size_t len)
{
	const char *p = s;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, tok, len) && (p[len] == ' ' || p[len] == '\0'))
			return 1;
		while (*p && *p != ' ')
			p++;
	}
	return 0;
}

/**
 * kvm_cmdline_append() - append " tok" unless already present
 * Return: 0, or -E2BIG when @out is full.
 */
static int kvm_cmdline_append(char *out, size_t out_len, const char *tok, size_t len, int dedup)
{
	size_t cur = strlen(out);

	if (dedup && kvm_cmdline_has(out, tok, len))
		return 0;
	if (cur + 1 + len + 1 > out_len)
		return -E2BIG;
	if (cur)
		out[cur++] = ' ';
	memcpy(out + cur, tok, len);
	out[cur + len] = '\0';
	return 0;
}

/**
 * kvm_cmdline_too_long() - the error for a command line that fits only without what
 * microvm appends (the PVM arguments, one virtio_mmio.device= per device)
 * Return: -E2BIG with mvm_last_error() set.
 */
static int kvm_cmdline_too_long(const char *user, size_t out_len)
{
	return mvm_set_error(-E2BIG, "kernel command line too long: %zu bytes given, and the "
			     "arguments microvm appends (virtio-mmio devices, PVM) take it over "
			     "the limit of %zu bytes", strlen(user), out_len - 1);
}

/**
 * kvm_cmdline_build() - the guest command line
 * @out/@out_len: result buffer
 * @user:	the caller's command line, or NULL for "console=ttyS0 reboot=t panic=-1 quiet"
 * @pvm:	add the PVM arguments (those not already present)
 * @devs/@nr:	MMIO devices, each announced as virtio_mmio.device=4K@BASE:IRQ
 *
 * Return: 0, or -E2BIG with mvm_last_error() set.
 */
int kvm_cmdline_build(char *out, size_t out_len, const char *user, int pvm,
		      const struct kvm_mmio_dev *devs, unsigned int nr)
{
	const char *p, *e;
	char tok[64];
	unsigned int i;
	int n;

	if (!out_len)
		return -E2BIG;
	out[0] = '\0';
	if (!user)
		user = kvm_default_cmdline;
	if (strlen(user) + 1 > out_len)
		return mvm_set_error(-E2BIG, "kernel command line too long: %zu bytes, the limit "
				     "is %zu", strlen(user), out_len - 1);
	strcpy(out, user);
	for (p = pvm ? kvm_pvm_args : ""; *p; p = e) {
		while (*p == ' ')
			p++;
		e = strchr(p, ' ');
		if (!e)
			e = p + strlen(p);
		if (e > p && kvm_cmdline_append(out, out_len, p, (size_t)(e - p), 1))
			return kvm_cmdline_too_long(user, out_len);
	}
	for (i = 0; i < nr; i++) {
		n = snprintf(tok, sizeof(tok), "virtio_mmio.device=%lluK@0x%llx:%u",
			     (unsigned long long)(devs[i].size >> 10),
			     (unsigned long long)devs[i].base, devs[i].irq);
		if (kvm_cmdline_append(out, out_len, tok, (size_t)n, 0))
			return kvm_cmdline_too_long(user, out_len);
	}
	return 0;
}

/**
 * kvm_cmdline_add_time() - append microvm.time=@now unless the command line sets it
 * @out/@out_len: the command line built by kvm_cmdline_build()
 * @now:	the host's wall clock, in seconds since the epoch
 *
 * The guest has no RTC; microvm-init sets its clock from this token (OpenVPN checks
 * certificate dates).  A caller's own microvm.time= wins (tests use it).
 *
 * Return: 0, or -E2BIG with mvm_last_error() set.
 */
int kvm_cmdline_add_time(char *out, size_t out_len, long long now)
{
	static const char key[] = "microvm.time=";
	const char *p;
	char tok[40];
	int n;

	for (p = strstr(out, key); p; p = strstr(p + 1, key))
		if (p == out || p[-1] == ' ')
			return 0;
	n = snprintf(tok, sizeof(tok), "%s%lld", key, now);
	if (kvm_cmdline_append(out, out_len, tok, (size_t)n, 0))
		return mvm_set_error(-E2BIG, "kernel command line too long for %s (limit %zu "
				     "bytes)", tok, out_len - 1);
	return 0;
}

/**
 * kvm_vm_stop() - the guest is done: record why (first caller wins), tell the runtime, kick
 * @reason:	exit reason (REBOOT or ERROR becomes PANIC when the console showed a panic)
 * @fmt:	detail for the user
 */
void kvm_vm_stop(struct kvm_vm *kvm, enum mvm_exit_reason reason, const char *fmt, ...)
{
	char detail[200];
	unsigned int i;
	va_list ap;

	if (atomic_exchange(&kvm->stopping, true))
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* After a panic, the reboot (or a failure on the way there) is the panic's doing. */
	if ((reason == MVM_EXIT_REBOOT || reason == MVM_EXIT_ERROR) && atomic_load(&kvm->panicked))
		reason = MVM_EXIT_PANIC;
	mvm_vm_exited(kvm->vm, reason, detail);
	for (i = 0; i < kvm->ncpus; i++)
		kvm_cpu_kick(&kvm->cpus[i]);
}

/**
 * kvm_console_line() - look at one complete console line for panics and poweroff
 */
static void kvm_console_line(struct kvm_vm *kvm, const char *line)
{
	if (strstr(line, "Kernel panic - not syncing"))
		atomic_store(&kvm->panicked, true);
	else if (strstr(line, "reboot: System halted") || strstr(line, "reboot: Power down"))
		kvm_vm_stop(kvm, MVM_EXIT_POWEROFF, "guest powered off");
}

/**
 * kvm_serial_output() - bytes from the UART: to the console, and through the line watcher
 */
static void kvm_serial_output(void *opaque, const uint8_t *data, size_t len)
{
	struct kvm_vm *kvm = opaque;
	size_t i;

	mvm_vm_console_output(kvm->vm, data, len);
	pthread_mutex_lock(&kvm->line_lock);
	for (i = 0; i < len; i++) {
		if (data[i] == '\n' || kvm->line_len == sizeof(kvm->line) - 1) {
			kvm->line[kvm->line_len] = '\0';
			kvm->line_len = 0;
			kvm_console_line(kvm, kvm->line);
		}
		if (data[i] != '\n' && data[i] != '\r')
			kvm->line[kvm->line_len++] = (char)data[i];
	}
	pthread_mutex_unlock(&kvm->line_lock);
}

/**
 * kvm_irq_line() - drive interrupt line @irq (x86: PIC and IOAPIC pin; arm64: SPI) to @level
 */
void kvm_irq_line(struct kvm_vm *kvm, unsigned int irq, int level)
{
	struct kvm_irq_level l = { .irq = kvm_arch_irq(kvm, irq), .level = level ? 1 : 0 };

	ioctl(kvm->vm_fd, KVM_IRQ_LINE, &l);
}

static void kvm_serial_irq(void *opaque, int level)
{
	struct kvm_vm *kvm = opaque;

	kvm_irq_line(kvm, kvm->serial_irq, level);
}

static const struct serial_ops kvm_serial_ops = {
	.output = kvm_serial_output,
	.set_irq = kvm_serial_irq,
};

/**
 * kvm_serial_mmio() - the UART on the MMIO bus (arm64): registers one byte apart
 * @opaque:	the VM
 * @offset:	register (0..7), from the UART's base
 * @data/@len/@is_write: the access; wider than a byte reads as all-ones, writes are ignored
 */
void kvm_serial_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, int is_write)
{
	struct kvm_vm *kvm = opaque;

	if (len == 1 && offset < SERIAL_NR_REGS) {
		serial_io(kvm->serial, (unsigned int)offset, is_write, data);
		return;
	}
	if (!is_write)
		memset(data, 0xff, len);
}

/**
 * kvm_mmio() - one MMIO access from the guest
 */
void kvm_mmio(struct kvm_vm *kvm, uint64_t addr, uint8_t *data, uint32_t len, int is_write)
{
	unsigned int i;

	for (i = 0; i < kvm->nr_mmio; i++) {
		struct kvm_mmio_dev *d = &kvm->mmio[i];

		if (addr >= d->base && addr - d->base < d->size &&
		    len <= d->size - (addr - d->base)) {
			d->fn(d->opaque, addr - d->base, data, len, is_write);
			return;
		}
	}
	if (!is_write)
		memset(data, 0xff, len);
}

/**
 * kvm_add_mmio() - put a device in the next virtio-mmio slot
 * @fn/@opaque:	access handler and its device
 * @free_fn:	frees @opaque when the VM goes (may be NULL)
 * @irq:	set to the slot's interrupt line
 * @base:	set to the slot's guest physical base
 *
 * Must be called before the command line is built (kvm_devices_add() is the place).
 * Return: 0, or -ENOSPC when all slots are taken.
 */
int kvm_add_mmio(struct kvm_vm *kvm, kvm_mmio_fn fn, void *opaque, void (*free_fn)(void *),
		 unsigned int *irq, uint64_t *base)
{
	uint64_t b, size;
	unsigned int line;
	int ret;

	if (kvm->nr_mmio >= KVM_MAX_MMIO)
		return mvm_set_error(-ENOSPC, "too many MMIO devices (max %d)", KVM_MAX_MMIO);
	ret = kvm_arch_mmio_slot(kvm, kvm->nr_mmio, &b, &size, &line);
	if (ret < 0)
		return ret;
	ret = kvm_add_mmio_at(kvm, b, size, line, fn, opaque, free_fn);
	if (ret < 0)
		return ret;
	if (irq)
		*irq = line;
	if (base)
		*base = b;
	return 0;
}

/**
 * kvm_add_mmio_at() - put a device at a fixed window of the MMIO bus (arm64's UART)
 * @base/@size:	its guest physical window
 * @irq:	its interrupt line
 * @fn/@opaque:	access handler and its device
 * @free_fn:	frees @opaque when the VM goes (may be NULL)
 * Return: 0, or -ENOSPC when the table is full.
 */
int kvm_add_mmio_at(struct kvm_vm *kvm, uint64_t base, uint64_t size, unsigned int irq,
		    kvm_mmio_fn fn, void *opaque, void (*free_fn)(void *))
{
	struct kvm_mmio_dev *d;

	if (kvm->nr_mmio >= KVM_MAX_MMIO)
		return mvm_set_error(-ENOSPC, "too many MMIO devices (max %d)", KVM_MAX_MMIO);
	d = &kvm->mmio[kvm->nr_mmio];
	d->base = base;
	d->size = size;
	d->irq = irq;
	d->fn = fn;
	d->opaque = opaque;
	d->free = free_fn;
	kvm->nr_mmio++;
	return 0;
}

/**
 * kvm_open() - open /dev/kvm with an error that says what to do
 * Return: the fd, or -errno with mvm_last_error() set.
 */
static int kvm_open(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), err, ver;

	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			return mvm_set_error(-ENOENT,
					     "no /dev/kvm: load the kvm module (modprobe kvm_intel or "
					     "kvm_amd); 'microvm up' can use the namespace backend "
					     "instead");
		if (err == EACCES || err == EPERM)
			return mvm_set_error(-err,
					     "cannot open /dev/kvm: %s (add yourself to the 'kvm' group)",
					     strerror(err));
		return mvm_set_error(-err, "cannot open /dev/kvm: %s", strerror(err));
	}
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		close(fd);
		return mvm_set_error(-ENOTSUP, "/dev/kvm speaks API version %d, need %d", ver,
				     KVM_API_VERSION);
	}
	return fd;
}

/**
 * kvm_usable() - can KVM run a whole guest (kernel and user space) here?
 */
static int kvm_usable(char *why, size_t why_len)
{
	int fd = kvm_open();

	if (fd < 0) {
		snprintf(why, why_len, "%s", mvm_last_error());
		return 0;
	}
	close(fd);
	if (kvm_pvm_host()) {
		snprintf(why, why_len,
			 "/dev/kvm is PVM-backed (kvm_pvm): guest user space cannot run");
		return 0;
	}
	return 1;
}

/**
 * kvm_read_file() - whole file into memory, at most @max bytes
 * @what:	"kernel" or "initrd", for messages
 * Return: 0 or -errno with mvm_last_error() set.
 */
int kvm_read_file(const char *path, const char *what, uint64_t max, uint8_t **buf,
		  size_t *len)
{
	struct stat st;
	ssize_t r;
	size_t got = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		return mvm_set_error(-err, "cannot open %s %s: %s (check the path)", what, path,
				     strerror(err));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return mvm_set_error(-EINVAL, "%s %s is not a regular file", what, path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return mvm_set_error(-EFBIG, "%s %s is too big (%lld MiB) for guest memory",
				     what, path, (long long)(st.st_size >> 20));
	}
	*buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*buf) {
		close(fd);
		return mvm_set_error(-ENOMEM, "out of memory reading %s", path);
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, *buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? errno : EIO;
			close(fd);
			free(*buf);
			return mvm_set_error(-err, "reading %s %s: %s", what, path, strerror(err));
		}
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return 0;
}

/**
 * kvm_check_config() - sizes a user could get wrong, with messages saying what is allowed
 */
static int kvm_check_config(const struct mvm_config *cfg)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t host_mib = pages > 0 && psz > 0 ? ((uint64_t)pages * (uint64_t)psz) >> 20 : 0;

	if (!cfg->kernel_path || !cfg->kernel_path[0])
		return mvm_set_error(-EINVAL, "no kernel given");
	if (cfg->mem_mib < KVM_MIN_MEM_MIB)
		return mvm_set_error(-EINVAL, "guest memory %u MiB is too small (minimum %d MiB)",
				     cfg->mem_mib, KVM_MIN_MEM_MIB);
	if (host_mib && cfg->mem_mib > host_mib)
		return mvm_set_error(-EINVAL,
				     "guest memory %u MiB is more than this host has (%llu MiB)",
				     cfg->mem_mib, (unsigned long long)host_mib);
	if (cfg->cpus < 1 || cfg->cpus > KVM_MAX_CPUS)
		return mvm_set_error(-EINVAL, "%u vCPUs is out of range (1..%d)", cfg->cpus,
				     KVM_MAX_CPUS);
	return 0;
}

/**
 * kvm_setup_vm() - VM fd, the architecture's interrupt controller, and guest memory slots
 */
static int kvm_setup_vm(struct kvm_vm *kvm)
{
	struct kvm_ram_region regions[KVM_MAX_RAM_REGIONS];
	struct kvm_userspace_memory_region r;
	unsigned int i, n;
	int ret;

	kvm->vm_fd = ioctl(kvm->kvm_fd, KVM_CREATE_VM, 0);
	if (kvm->vm_fd < 0)
		return mvm_set_error(-errno, "KVM_CREATE_VM: %s", strerror(errno));
	ret = ioctl(kvm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0)
		return mvm_set_error(-EIO, "KVM_GET_VCPU_MMAP_SIZE failed");
	kvm->run_size = (size_t)ret;
	ret = kvm_arch_vm_init(kvm);
	if (ret < 0)
		return ret;

	kvm->mem_size = (uint64_t)kvm->cfg.mem_mib << 20;
	kvm->mem = mmap(NULL, kvm->mem_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (kvm->mem == MAP_FAILED) {
		kvm->mem = NULL;
		return mvm_set_error(-ENOMEM, "cannot map %u MiB of guest memory: %s",
				     kvm->cfg.mem_mib, strerror(errno));
	}
	madvise(kvm->mem, kvm->mem_size, MADV_MERGEABLE);
	mvm_gmem_init(&kvm->gmem);
	n = kvm_arch_ram_layout(kvm, regions);
	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.slot = i;
		r.guest_phys_addr = regions[i].gpa;
		r.memory_size = regions[i].size;
		r.userspace_addr = (uintptr_t)(kvm->mem + regions[i].offset);
		if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return mvm_set_error(-errno, "KVM_SET_USER_MEMORY_REGION (slot %u): %s", i,
					     strerror(errno));
		mvm_gmem_add(&kvm->gmem, regions[i].gpa, regions[i].size,
			     kvm->mem + regions[i].offset);
	}
	return 0;
}

static void kvm_destroy(void *priv);

/**
 * kvm_find_defaults() - fill in the project's guest kernel and image when none is given
 * @cfg:	the caller's config, copied into @out
 * @out:	config with the defaults filled in
 * @kbuf/@ibuf:	PATH_MAX buffers for the found paths (live until create() returns)
 *
 * Without a kernel, both the kernel and (when no initrd is given either) the initramfs come
 * from runtime/guest_files.c: MICROVM_KERNEL/MICROVM_INITRD, this build's `make kernel`/`make
 * image` cache entry, $datadir/microvm/, else the newest cache entry, with a note on stderr
 * (unless cfg->quiet) that it is stale.  A caller that names its own kernel gets no default
 * initrd (a kernel of its own rarely wants our image).
 *
 * Return: 0, or -ENOENT with one error that names the command building what is missing.
 */
static int kvm_find_defaults(const struct mvm_config *cfg, struct mvm_config *out, char *kbuf,
			     char *ibuf)
{
	char knote[PATH_MAX + 256] = "", inote[PATH_MAX + 256] = "";
	bool need_k, need_i, no_k, no_i;

	*out = *cfg;
	need_k = !cfg->kernel_path || !cfg->kernel_path[0];
	need_i = need_k && (!cfg->initrd_path || !cfg->initrd_path[0]);
	no_k = need_k && mvm_guest_file_find(MVM_GUEST_KERNEL, kbuf, PATH_MAX, knote,
					     sizeof(knote));
	no_i = need_i && mvm_guest_file_find(MVM_GUEST_INITRD, ibuf, PATH_MAX, inote,
					     sizeof(inote));
	if (no_k && no_i)
		return mvm_set_error(-ENOENT, "no guest kernel or image found: build them with "
				     "'make kernel image' (or pass --kernel and --initrd, or set "
				     "MICROVM_KERNEL and MICROVM_INITRD)");
	if (no_k)
		return mvm_set_error(-ENOENT, "no guest kernel found: build it with 'make kernel' "
				     "(or pass --kernel, or set MICROVM_KERNEL)");
	if (no_i)
		return mvm_set_error(-ENOENT, "no guest image found: build it with 'make image' "
				     "(or pass --initrd, or set MICROVM_INITRD)");
	if (need_k)
		out->kernel_path = kbuf;
	if (need_i)
		out->initrd_path = ibuf;
	if (!cfg->quiet) {
		if (need_k && knote[0])
			fprintf(stderr, "microvm: note: %s\n", knote);
		if (need_i && inote[0])
			fprintf(stderr, "microvm: note: %s\n", inote);
	}
	return 0;
}

/**
 * kvm_blame_default() - add to a load error on a default file how to get a good one
 * @cfg:	the config create() used; @kbuf/@ibuf: what kvm_find_defaults() filled in
 * @ret:	the error, returned
 */
static int kvm_blame_default(const struct mvm_config *cfg, const char *kbuf, const char *ibuf,
			     int ret)
{
	const char *env = NULL, *make = NULL, *opt = NULL, *what = NULL;
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", mvm_last_error());
	if (cfg->kernel_path == kbuf && strstr(msg, kbuf)) {
		env = mvm_guest_file_env(MVM_GUEST_KERNEL);
		make = "make kernel";
		opt = "--kernel";
		what = "kernel";
	} else if (cfg->initrd_path == ibuf && strstr(msg, ibuf)) {
		env = mvm_guest_file_env(MVM_GUEST_INITRD);
		make = "make image";
		opt = "--initrd";
		what = "image";
	}
	if (!env)
		return ret;
	if (getenv(env) && *getenv(env))
		return mvm_set_error(ret, "%s (from %s)", msg, env);
	return mvm_set_error(ret, "%s; this is the default %s: rebuild it with '%s' or pass "
			     "%s FILE", msg, what, make, opt);
}

/**
 * kvm_create() - the backend's create op
 */
static int kvm_create(mvm_vm *vm, const struct mvm_config *cfg, void **priv)
{
	char kbuf[PATH_MAX], ibuf[PATH_MAX];
	struct mvm_config c;
	struct kvm_vm *kvm;
	unsigned int i;
	int ret;

	ret = kvm_find_defaults(cfg, &c, kbuf, ibuf);
	if (ret < 0)
		return ret;
	cfg = &c;
	ret = kvm_check_config(cfg);
	if (ret < 0)
		return ret;
	kvm = calloc(1, sizeof(*kvm));
	if (!kvm)
		return mvm_set_error(-ENOMEM, "out of memory");
	kvm->vm = vm;
	kvm->cfg = *cfg;
	kvm->vm_fd = -1;
	kvm->ncpus = cfg->cpus;
	pthread_mutex_init(&kvm->line_lock, NULL);
	for (i = 0; i < KVM_MAX_CPUS; i++)
		kvm->cpus[i].fd = -1;

	kvm->kvm_fd = kvm_open();
	if (kvm->kvm_fd < 0) {
		ret = kvm->kvm_fd;
		goto err;
	}
	ret = kvm_setup_vm(kvm);
	if (ret < 0)
		goto err;
	kvm->serial = serial_new(&kvm_serial_ops, kvm);
	if (!kvm->serial) {
		ret = mvm_set_error(-ENOMEM, "out of memory");
		goto err;
	}
	ret = kvm_arch_devices(kvm);
	if (ret < 0)
		goto err;
	ret = kvm_devices_add(kvm);
	if (ret < 0)
		goto err;
	ret = kvm_arch_load_guest(kvm);
	if (ret < 0) {
		ret = kvm_blame_default(cfg, kbuf, ibuf, ret);
		goto err;
	}
	for (i = 0; i < kvm->ncpus; i++) {
		ret = kvm_cpu_init(kvm, &kvm->cpus[i], i);
		if (ret < 0)
			goto err;
	}
	ret = kvm_arch_vm_ready(kvm);
	if (ret < 0)
		goto err;
	/* Strings in the config belong to the caller; nothing after create() needs them. */
	kvm->cfg.kernel_path = kvm->cfg.initrd_path = kvm->cfg.cmdline = NULL;
	kvm->cfg.rootfs_path = kvm->cfg.vsock_uds_path = NULL;
	*priv = kvm;
	return 0;
err:
	kvm_destroy(kvm);
	return ret;
}

/**
 * kvm_start() - one thread per vCPU
 */
static int kvm_start(void *priv)
{
	struct kvm_vm *kvm = priv;
	unsigned int i;
	int err;

	for (i = 0; i < kvm->ncpus; i++) {
		err = pthread_create(&kvm->cpus[i].thread, NULL, kvm_cpu_thread, &kvm->cpus[i]);
		if (err) {
			kvm_vm_stop(kvm, MVM_EXIT_ERROR, "cannot start vCPU thread: %s",
				    strerror(err));
			return mvm_set_error(-err, "cannot start vCPU thread: %s", strerror(err));
		}
		kvm->cpus[i].started = true;
	}
	return 0;
}

static int kvm_kill(void *priv)
{
	kvm_vm_stop(priv, MVM_EXIT_KILLED, "stopped by the host");
	return 0;
}

static long kvm_console_write(void *priv, const void *data, size_t len)
{
	struct kvm_vm *kvm = priv;

	return (long)serial_input(kvm->serial, data, len);
}

static mvm_vsock *kvm_vsock(void *priv)
{
	return ((struct kvm_vm *)priv)->vsock;
}

/**
 * kvm_stats() - the backend's stats op: the devices' counters
 */
static int kvm_stats(void *priv, char *buf, size_t len)
{
	return kvm_devices_stats(priv, buf, len);
}

/**
 * kvm_destroy() - stop threads, free devices, vCPUs, memory and fds
 */
static void kvm_destroy(void *priv)
{
	struct kvm_vm *kvm = priv;
	unsigned int i;

	if (!kvm)
		return;
	atomic_store(&kvm->stopping, true);
	for (i = 0; i < kvm->ncpus; i++) {
		struct kvm_cpu *cpu = &kvm->cpus[i];

		if (cpu->started) {
			kvm_cpu_kick(cpu);
			pthread_join(cpu->thread, NULL);
		}
		if (cpu->run)
			munmap(cpu->run, kvm->run_size);
		if (cpu->fd >= 0)
			close(cpu->fd);
	}
	for (i = 0; i < kvm->nr_mmio; i++)
		if (kvm->mmio[i].free)
			kvm->mmio[i].free(kvm->mmio[i].opaque);
	serial_free(kvm->serial);
	kvm_arch_destroy(kvm);
	if (kvm->mem)
		munmap(kvm->mem, kvm->mem_size);
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->kvm_fd >= 0)
		close(kvm->kvm_fd);
	pthread_mutex_destroy(&kvm->line_lock);
	free(kvm);
}

const struct mvm_backend_ops mvm_kvm_backend = {
	.name = "KVM",
	.kind = MVM_BACKEND_KVM,
	.usable = kvm_usable,
	.create = kvm_create,
	.start = kvm_start,
	.request_stop = NULL,
	.kill = kvm_kill,
	.console_write = kvm_console_write,
	.vsock = kvm_vsock,
	.stats = kvm_stats,
	.destroy = kvm_destroy,
};
