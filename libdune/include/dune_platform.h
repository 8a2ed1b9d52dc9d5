/* dune_platform.h -- what kind of virtualization this host gives a Dune process.
 *
 * Every benchmark result in dunegc records this, because it decides what a Dune number
 * means: Dune's speed needs hardware virtualization with nested paging (`hw`); under
 * software virtualization (`pvm`: KVM-PVM, shadow paging) or an emulator (`tcg`: QEMU TCG)
 * Dune runs correctly but every privileged operation traps. Needs no Dune mode and no
 * dune_init(); safe to call from any program.
 */
#ifndef DUNE_PLATFORM_H
#define DUNE_PLATFORM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dune_virt {
	DUNE_VIRT_NONE = 0, /* no usable /dev/kvm (or /dev/dune): Dune mode unavailable */
	DUNE_VIRT_HW,       /* KVM on VT-x/SVM with EPT/NPT: the paper's setting */
	DUNE_VIRT_PVM,      /* KVM without hardware virtualization (KVM-PVM, shadow paging) */
	DUNE_VIRT_TCG,      /* inside QEMU TCG: KVM runs on emulated SVM/NPT */
};

/* "none", "hw", "pvm", "tcg". */
const char *dune_virt_name(enum dune_virt v);

/* Detect once; `why` (may be NULL) receives one line saying how it was decided. */
enum dune_virt dune_detect_virt(char *why, size_t why_len);

struct dune_platform_info {
	enum dune_virt virt;
	char virt_why[160];
	char cpu_vendor[16];   /* "GenuineIntel", "AuthenticAMD", ... */
	char cpu_model[64];    /* CPUID brand string, trimmed */
	char kernel[160];      /* uname: release and version */
	int ncpus;             /* online CPUs */
	char id[64];           /* short file-name-safe tag: <virt>-<vendor>-<n>cpu */
};

void dune_platform_info(struct dune_platform_info *out);

/* The platform as one JSON object (no trailing newline). Returns the length that
 * snprintf would have written. */
int dune_platform_json(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* DUNE_PLATFORM_H */
