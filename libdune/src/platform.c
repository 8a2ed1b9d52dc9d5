/* Virtualization-kind detection: see dune_platform.h. */
#include "dune_platform.h"

#include <cpuid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

const char *dune_virt_name(enum dune_virt v)
{
	switch (v) {
	case DUNE_VIRT_HW: return "hw";
	case DUNE_VIRT_PVM: return "pvm";
	case DUNE_VIRT_TCG: return "tcg";
	case DUNE_VIRT_NONE: break;
	}
	return "none";
}

static int path_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* QEMU's TCG announces itself in the hypervisor CPUID leaf. */
static int under_tcg(void)
{
	unsigned a, b, c, d;
	char sig[13];

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31))) /* no hypervisor bit: bare metal */
		return 0;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig + 0, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = 0;
	return strcmp(sig, "TCGTCGTCGTCG") == 0;
}

/* VT-x (CPUID.1:ECX.VMX) or SVM (CPUID.80000001:ECX.SVM) visible to this kernel. */
static int cpu_has_hw_virt(void)
{
	unsigned a, b, c, d;

	__cpuid(1, a, b, c, d);
	if (c & (1u << 5))
		return 1;
	__cpuid(0x80000000, a, b, c, d);
	if (a >= 0x80000001) {
		__cpuid(0x80000001, a, b, c, d);
		if (c & (1u << 2))
			return 1;
	}
	return 0;
}

static enum dune_virt detect(char *why, size_t why_len)
{
	int fd;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0 && !path_exists("/dev/dune")) {
		snprintf(why, why_len, "/dev/kvm: %s; no /dev/dune", strerror(errno));
		return DUNE_VIRT_NONE;
	}
	if (fd >= 0)
		close(fd);

	if (under_tcg()) {
		snprintf(why, why_len, "CPUID hypervisor signature TCGTCGTCGTCG (QEMU TCG)");
		return DUNE_VIRT_TCG;
	}
	if (path_exists("/sys/module/kvm_pvm")) {
		snprintf(why, why_len, "kvm_pvm module loaded (software virtualization, shadow paging)");
		return DUNE_VIRT_PVM;
	}
	if (cpu_has_hw_virt() &&
	    (path_exists("/sys/module/kvm_intel") || path_exists("/sys/module/kvm_amd") ||
	     path_exists("/dev/dune"))) {
		snprintf(why, why_len, "CPU has %s and %s is loaded",
			 path_exists("/sys/module/kvm_amd") ? "SVM" : "VT-x/SVM",
			 path_exists("/dev/dune") ? "/dev/dune" :
			 path_exists("/sys/module/kvm_amd") ? "kvm_amd" : "kvm_intel");
		return DUNE_VIRT_HW;
	}
	/* KVM that works without VMX/SVM in the CPU can only be software virtualization. */
	snprintf(why, why_len, "/dev/kvm works but the CPU shows no VT-x/SVM: software virtualization");
	return DUNE_VIRT_PVM;
}

/* Decided once per process: inside Dune mode CPUID may describe the virtual CPU rather
 * than the host's, and the answer must not change under a running program. */
enum dune_virt dune_detect_virt(char *why, size_t why_len)
{
	static int done;
	static enum dune_virt cached;
	static char cached_why[160];

	if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
		cached = detect(cached_why, sizeof(cached_why));
		__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	}
	if (why && why_len)
		snprintf(why, why_len, "%s", cached_why);
	return cached;
}

static void trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
}

void dune_platform_info(struct dune_platform_info *p)
{
	unsigned regs[12], a, b, c, d;
	struct utsname u;
	char vendor_lc[16];
	long n;

	memset(p, 0, sizeof(*p));
	p->virt = dune_detect_virt(p->virt_why, sizeof(p->virt_why));

	__cpuid(0, a, b, c, d);
	memcpy(p->cpu_vendor + 0, &b, 4);
	memcpy(p->cpu_vendor + 4, &d, 4);
	memcpy(p->cpu_vendor + 8, &c, 4);

	__cpuid(0x80000000, a, b, c, d);
	if (a >= 0x80000004) {
		for (unsigned i = 0; i < 3; i++)
			__cpuid(0x80000002 + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2],
				regs[4 * i + 3]);
		memcpy(p->cpu_model, regs, 48);
		p->cpu_model[48] = 0;
		trim(p->cpu_model);
	}

	if (uname(&u) == 0)
		snprintf(p->kernel, sizeof(p->kernel), "%s %s", u.release, u.version);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	p->ncpus = n > 0 ? (int)n : 1;

	if (!strcmp(p->cpu_vendor, "GenuineIntel"))
		strcpy(vendor_lc, "intel");
	else if (!strcmp(p->cpu_vendor, "AuthenticAMD"))
		strcpy(vendor_lc, "amd");
	else
		strcpy(vendor_lc, "cpu");
	snprintf(p->id, sizeof(p->id), "%s-%s-%dcpu", dune_virt_name(p->virt), vendor_lc,
		 p->ncpus);
}

/* Strings here come from CPUID and uname: escape quotes, backslashes and controls. */
static int json_str(char *buf, size_t len, const char *s)
{
	int n = snprintf(buf, len, "\"");

	for (; *s; s++) {
		size_t left = (size_t)n < len ? len - (size_t)n : 0;
		if (*s == '"' || *s == '\\')
			n += snprintf(buf + (left ? n : 0), left, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			n += snprintf(buf + (left ? n : 0), left, "\\u%04x", *s);
		else
			n += snprintf(buf + (left ? n : 0), left, "%c", *s);
	}
	n += snprintf(buf + ((size_t)n < len ? n : 0), (size_t)n < len ? len - n : 0, "\"");
	return n;
}

int dune_platform_json(char *buf, size_t len)
{
	struct dune_platform_info p;
	const char *keys[] = {"id", "virt", "virt_why", "cpu_vendor", "cpu_model", "kernel"};
	const char *vals[6];
	int n = 0;

	dune_platform_info(&p);
	vals[0] = p.id;
	vals[1] = dune_virt_name(p.virt);
	vals[2] = p.virt_why;
	vals[3] = p.cpu_vendor;
	vals[4] = p.cpu_model;
	vals[5] = p.kernel;

#define AT() (buf + ((size_t)n < len ? (size_t)n : 0)), ((size_t)n < len ? len - (size_t)n : 0)
	n += snprintf(AT(), "{");
	for (int i = 0; i < 6; i++) {
		n += snprintf(AT(), "\"%s\": ", keys[i]);
		n += json_str(AT(), vals[i]);
		n += snprintf(AT(), ", ");
	}
	n += snprintf(AT(), "\"ncpus\": %d}", p.ncpus);
#undef AT
	return n;
}
