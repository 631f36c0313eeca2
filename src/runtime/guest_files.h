/* SPDX-License-Identifier: MIT */
/* guest_files.h - where the project's guest kernel and image are found by default. */
#ifndef MVM_RUNTIME_GUEST_FILES_H
#define MVM_RUNTIME_GUEST_FILES_H

#include <stddef.h>

/*
 * Where this host architecture's guest files live in the build cache, under kernel/ and
 * image/ (guest/kernel/build.sh and guest/image/build.sh: x86_64 entries directly there,
 * arm64 ones in an arm64/ subdirectory), and the kernel's file name (x86: vmlinux, the ELF
 * the KVM backend loads; arm64: the Image).  The same name is used under $datadir/microvm/.
 */
#if defined(__aarch64__)
#define MVM_GUEST_CACHE_ARCH	"arm64/"
#define MVM_GUEST_KERNEL_NAME	"Image"
#define MVM_GUEST_MAKE_KERNEL	"make kernel-arm64"	/* the command that builds it */
#define MVM_GUEST_MAKE_IMAGE	"make image-arm64"
#else
#define MVM_GUEST_CACHE_ARCH	""
#define MVM_GUEST_KERNEL_NAME	"vmlinux"
#define MVM_GUEST_MAKE_KERNEL	"make kernel"
#define MVM_GUEST_MAKE_IMAGE	"make image"
#endif

/* The files a backend can take by default when the caller names none. */
enum mvm_guest_file {
	MVM_GUEST_KERNEL,	/* vmlinux (x86_64) or Image (arm64) */
	MVM_GUEST_INITRD,	/* initramfs.cpio.gz */
	MVM_GUEST_ROOTFS,	/* rootfs.tar.gz (namespace backend) */
};

int mvm_guest_file_find(enum mvm_guest_file f, char *buf, size_t len, char *note,
			size_t note_len);
int mvm_guest_key_read(const char *path, const char *kind, char *key, size_t len);
const char *mvm_guest_file_env(enum mvm_guest_file f);

#endif
