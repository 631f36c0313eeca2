/* SPDX-License-Identifier: MIT */
/* guest_files.h - where the project's guest kernel and image are found by default. */
#ifndef MVM_RUNTIME_GUEST_FILES_H
#define MVM_RUNTIME_GUEST_FILES_H

#include <stddef.h>

/* The files a backend can take by default when the caller names none. */
enum mvm_guest_file {
	MVM_GUEST_KERNEL,	/* vmlinux */
	MVM_GUEST_INITRD,	/* initramfs.cpio.gz */
	MVM_GUEST_ROOTFS,	/* rootfs.tar.gz (namespace backend) */
};

int mvm_guest_file_find(enum mvm_guest_file f, char *buf, size_t len, char *note,
			size_t note_len);
int mvm_guest_key_read(const char *path, const char *kind, char *key, size_t len);
const char *mvm_guest_file_env(enum mvm_guest_file f);

#endif
