/* Built outside the tree against an installed prefix: cc prog.c $(pkg-config --cflags --libs libdune)
 * Includes <dune.h>; where /dev/kvm is usable, enters Dune mode and makes system calls. */
#include <dune.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	printf("virt=%s\n", dune_virt_name(dune_detect_virt(NULL, 0)));
	if (fd < 0) {
		printf("no usable /dev/kvm: Dune mode not tried\n");
		return 0;
	}
	close(fd);
	pid_t pid = getpid();
	int r = dune_init_and_enter();
	if (r) {
		fprintf(stderr, "dune_init_and_enter failed: %d\n", r);
		return 1;
	}
	if (syscall(SYS_getpid) != pid || !dune_in_dune_mode()) {
		fprintf(stderr, "syscall in Dune mode went wrong\n");
		return 1;
	}
	printf("dune mode: backend=%s cpl=%d getpid ok\n", dune_backend_name(dune_backend()),
	       dune_guest_cpl());
	return 0;
}
