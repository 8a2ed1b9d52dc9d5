/* backend_kmod.c -- the /dev/dune backend (original Dune ioctl ABI), not written yet.
 *
 * Selecting it (DUNE_BACKEND=kmod, or auto without /dev/kvm) fails with a clear error:
 * without /dev/dune the module is not loaded; with it, this build lacks the backend. The
 * seam it has to fill is struct dune_backend_ops (backend.h); docs/libdune.md lists what
 * the kmod backend needs from the core and the module. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "dune_internal.h"

static int kmod_open(struct dune_vm_info *info)
{
	(void)info;
	int fd = open("/dev/dune", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			dune_warn("dune: DUNE_BACKEND=kmod but /dev/dune does not exist (load dune.ko)");
		else
			dune_warn("dune: DUNE_BACKEND=kmod: cannot open /dev/dune: %s", strerror(e));
		return -e;
	}
	close(fd);
	dune_warn("dune: DUNE_BACKEND=kmod: /dev/dune is present but this libdune has no kmod "
		  "backend yet (use DUNE_BACKEND=kvm)");
	return -ENOSYS;
}

static void kmod_forget(void)
{
}

const struct dune_backend_ops dune_kmod_backend = {
	.name = "kmod",
	.kernel_loop = 1,
	.open = kmod_open,
	.forget = kmod_forget,
};
