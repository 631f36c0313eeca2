/* SPDX-License-Identifier: MIT */
/**
 * DOC: libmicrovm
 *
 * The one header an application needs: the runtime (VMs, console), the vsock client, the
 * SOCKS5 server, the VPN manager, error reporting, the host/guest contract and the version.
 * `pkg-config --cflags --libs microvm` gives the flags; docs/library.md the quick start.
 */
#ifndef MICROVM_MICROVM_H
#define MICROVM_MICROVM_H

#include "microvm/contract.h"
#include "microvm/error.h"
#include "microvm/export.h"
#include "microvm/manager.h"
#include "microvm/runtime.h"
#include "microvm/socks.h"
#include "microvm/version.h"
#include "microvm/vsock.h"

#endif
