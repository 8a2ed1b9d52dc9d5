/* drt.c - the tiny Dune runtime of the module's tests (see drt.h). */
#define _GNU_SOURCE
#include "drt.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096ULL
#define HUGE (2ULL << 20)
#define POOL_PAGES 1024 /* page-table pages: the three windows need about 70 */
#define IST_SIZE 16384
#define SEL_KCODE 0x10
#define SEL_TSS 0x40
#define MSR_SFMASK 0xc0000084

/* drt_entry.S */
int drt_enter_asm(int fd, struct dune_config *conf);
extern char drt_guest_start[];
extern char drt_trap_stubs[];
extern uint8_t drt_use_xsave;
extern uint64_t drt_fpu_area;

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap;
} __attribute__((packed));

struct drt_cpu {
	uint64_t gdt[10]; /* 0x10 kernel code, 0x18 kernel data, 0x40 TSS (two slots) */
	struct tss tss;
	struct dune_config conf;
	uint8_t ist_exceptions[IST_SIZE] __attribute__((aligned(64)));
	uint8_t ist_interrupts[IST_SIZE] __attribute__((aligned(64)));
};

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

struct dtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static int dune_fd = -1;
static struct dune_layout layout;
static uint64_t lstar;
static uint64_t *pml4;
static uint8_t *pool;
static unsigned pool_used;
static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct idt_gate idt[256] __attribute__((aligned(16)));
static drt_handler handlers[256];
static uint64_t signal_mask;
static __thread struct drt_cpu *cpu;

int drt_fd(void) { return dune_fd; }
const struct dune_layout *drt_layout(void) { return &layout; }
uint64_t drt_lstar(void) { return lstar; }

uint64_t drt_va_to_pa(const void *va)
{
	uint64_t v = (uint64_t)va;

	if (v >= layout.base_stack)
		return v - layout.base_stack + layout.phys_limit - GPA_STACK_SIZE;
	if (v >= layout.base_map)
		return v - layout.base_map + layout.phys_limit - GPA_STACK_SIZE - GPA_MAP_SIZE;
	return v;
}

static void *pa_to_va(uint64_t pa)
{
	uint64_t map_pa = layout.phys_limit - GPA_STACK_SIZE - GPA_MAP_SIZE;

	if (pa >= layout.phys_limit - GPA_STACK_SIZE)
		return (void *)(pa - (layout.phys_limit - GPA_STACK_SIZE) + layout.base_stack);
	if (pa >= map_pa)
		return (void *)(pa - map_pa + layout.base_map);
	return (void *)pa;
}

uint64_t drt_pml4_pa(void) { return drt_va_to_pa(pml4); }

static uint64_t *alloc_table(void)
{
	if (pool_used == POOL_PAGES) {
		fprintf(stderr, "drt: out of page-table pages\n");
		abort();
	}
	return (uint64_t *)(pool + PAGE * pool_used++);
}

/* The table an entry points to, created when absent. */
static uint64_t *next_table(uint64_t *entry)
{
	if (!(*entry & PTE_P))
		*entry = drt_va_to_pa(alloc_table()) | PTE_P | PTE_W;
	return pa_to_va(*entry & PTE_ADDR);
}

static uint64_t *pd_entry(uint64_t va)
{
	uint64_t *pdpt = next_table(&pml4[(va >> 39) & 511]);
	uint64_t *pd = next_table(&pdpt[(va >> 30) & 511]);

	return &pd[(va >> 21) & 511];
}

static void map_2m(uint64_t va, uint64_t size)
{
	for (uint64_t a = va; a < va + size; a += HUGE)
		*pd_entry(a) = drt_va_to_pa((void *)a) | PTE_P | PTE_W | PTE_PS;
}

uint64_t *drt_pte(const void *va)
{
	uint64_t v = (uint64_t)va, *pde, *pt;

	pthread_mutex_lock(&pt_lock);
	pde = pd_entry(v);
	if (*pde & PTE_PS) { /* split the 2 MiB mapping into 512 pages of the same memory */
		uint64_t base = *pde & PTE_ADDR & ~(HUGE - 1);

		pt = alloc_table();
		for (int i = 0; i < 512; i++)
			pt[i] = (base + i * PAGE) | PTE_P | PTE_W;
		*pde = drt_va_to_pa(pt) | PTE_P | PTE_W;
		if (drt_in_guest())
			drt_flush_tlb();
	}
	pt = next_table(pde);
	pthread_mutex_unlock(&pt_lock);
	return &pt[(v >> 12) & 511];
}

static void setup_page_table(void)
{
	/* The syscall stub at the guest's LSTAR: VMMCALL runs the call, then back to RCX. */
	static const uint8_t stub[] = { 0x0f, 0x01, 0xd9, 0xff, 0xe1 };
	uint8_t *page;
	uint64_t *pte;

	pml4 = alloc_table();
	map_2m(0, 4ULL << 30); /* identity: program, heap */
	map_2m(layout.base_map, GPA_MAP_SIZE);
	map_2m(layout.base_stack, GPA_STACK_SIZE);

	page = (uint8_t *)alloc_table();
	memcpy(page + (lstar & (PAGE - 1)), stub, sizeof(stub));
	pte = drt_pte((void *)lstar);
	*pte = drt_va_to_pa(page) | PTE_P | PTE_W;
}

static void setup_idt(void)
{
	for (int i = 0; i < 256; i++) {
		uint64_t isr = (uint64_t)drt_trap_stubs + 16 * i;

		idt[i] = (struct idt_gate){
			.off0 = isr & 0xffff, .sel = SEL_KCODE,
			.ist = i < 32 ? 1 : 2, /* exceptions and interrupts: own stacks, red zones kept */
			.type = 0x8e,	       /* present, DPL 0, 64-bit interrupt gate */
			.off1 = (isr >> 16) & 0xffff, .off2 = isr >> 32,
		};
	}
}

static void setup_fpu_save(void)
{
	unsigned a, b, c, d;

	drt_fpu_area = 512 + 64;
	__cpuid(1, a, b, c, d);
	if (c & bit_OSXSAVE) {
		__cpuid_count(0xd, 0, a, b, c, d);
		drt_use_xsave = 1;
		drt_fpu_area = b; /* the size XCR0's features need */
	}
}

int drt_init(void)
{
	dune_fd = open("/dev/dune", O_RDWR | O_CLOEXEC);
	if (dune_fd < 0)
		return -errno;
	if (ioctl(dune_fd, DUNE_GET_LAYOUT, &layout))
		return -errno;
	lstar = (uint64_t)(long)ioctl(dune_fd, DUNE_GET_SYSCALL);
	pool = mmap(NULL, PAGE * POOL_PAGES, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (pool == MAP_FAILED)
		return -errno;
	setup_page_table();
	setup_idt();
	setup_fpu_save();
	return 0;
}

static struct drt_cpu *new_cpu(void)
{
	struct drt_cpu *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	uint64_t base;

	if (c == MAP_FAILED)
		return NULL;
	c->gdt[2] = 0x00209a0000000000ULL; /* 0x10: 64-bit code, DPL 0 */
	c->gdt[3] = 0x0000920000000000ULL; /* 0x18: data */
	base = (uint64_t)&c->tss;
	c->gdt[8] = (sizeof(c->tss) - 1) | ((base & 0xffffff) << 16) | (0x89ULL << 40) |
		    ((base >> 24 & 0xff) << 56); /* 0x40: available 64-bit TSS */
	c->gdt[9] = base >> 32;
	c->tss.ist[0] = (uint64_t)c->ist_exceptions + IST_SIZE;
	c->tss.ist[1] = (uint64_t)c->ist_interrupts + IST_SIZE;
	c->tss.iomap = sizeof(c->tss);
	return c;
}

/* Runs first in guest mode, interrupts still off: load this thread's tables. */
void drt_guest_boot(void)
{
	struct dtr gdtr = { sizeof(cpu->gdt) - 1, (uint64_t)cpu->gdt };
	struct dtr idtr = { sizeof(idt) - 1, (uint64_t)idt };

	/* A forked child's copy of the GDT has the TSS marked busy by the parent's LTR. */
	cpu->gdt[8] &= ~(0x2ULL << 40);
	asm volatile("lgdt %0" : : "m"(gdtr));
	asm volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS));
	asm volatile("lidt %0" : : "m"(idtr));
	/* SFMASK 0: `syscall` keeps RFLAGS (IF stays on), so the stub needs no POPF. */
	drt_wrmsr(MSR_SFMASK, 0);
}

int drt_enter(void)
{
	if (drt_in_guest())
		return 0;
	if (!cpu) {
		cpu = new_cpu();
		if (!cpu)
			return -ENOMEM;
	}
	memset(&cpu->conf, 0, sizeof(cpu->conf));
	cpu->conf.rip = (uint64_t)drt_guest_start;
	cpu->conf.cr3 = drt_pml4_pa();
	cpu->conf.rflags = 0x2; /* interrupts off until the IDT is loaded */
	return drt_enter_asm(dune_fd, &cpu->conf);
}

bool drt_in_guest(void) { return (drt_read_cs() & 3) == 0; }

/* drt_entry.S calls this in normal mode whenever DUNE_ENTER returns; never returns. */
void drt_reenter(int fd, struct dune_config *conf) __attribute__((noreturn));
void drt_on_exit(int fd, struct dune_config *conf) __attribute__((noreturn));
void drt_on_exit(int fd, struct dune_config *conf)
{
	switch (conf->ret) {
	case DUNE_RET_SIGNAL: /* Linux handled its part on the way out; carry on */
		drt_reenter(fd, conf);
	case DUNE_RET_EXIT:
		syscall(conf->rax == SYS_exit ? SYS_exit : SYS_exit_group, (int)conf->status);
		break;
	default:
		break;
	}
	dprintf(2, "drt: guest stopped: ret %lld status %#llx at rip %#llx\n", conf->ret,
		(unsigned long long)conf->status, (unsigned long long)conf->rip);
	syscall(SYS_exit_group, DRT_STATUS(conf->ret));
	__builtin_unreachable();
}

void drt_set_handler(int vector, drt_handler fn) { handlers[vector] = fn; }

static void host_side(int sig) { (void)sig; }

int drt_on_signal(int sig, drt_handler fn)
{
	struct sigaction sa = { .sa_handler = host_side, .sa_flags = SA_RESTART };
	uint64_t mask;

	if (sig < 1 || sig > DUNE_SIGNAL_MAX)
		return -EINVAL;
	handlers[DUNE_SIGNAL_INTR_BASE + sig] = fn;
	/* A handler (not SIG_DFL) makes even default-ignore signals pending. */
	if (sigaction(sig, &sa, NULL))
		return -errno;
	mask = __atomic_or_fetch(&signal_mask, 1ULL << (sig - 1), __ATOMIC_SEQ_CST);
	return ioctl(dune_fd, DUNE_SET_SIGNALS, &mask) ? -errno : 0;
}

/* The common interrupt path (drt_entry.S) calls this on the interrupt stack. */
void drt_trap(struct drt_tf *tf)
{
	char buf[200];
	int n;

	if (handlers[tf->vector]) {
		handlers[tf->vector](tf);
		return;
	}
	n = snprintf(buf, sizeof(buf),
		     "drt: unhandled trap %lu error %#lx at rip %#lx rsp %#lx cr2 %#lx\n",
		     (unsigned long)tf->vector, (unsigned long)tf->error, (unsigned long)tf->rip,
		     (unsigned long)tf->rsp, (unsigned long)drt_read_cr2());
	if (write(2, buf, n) < 0) { /* nothing more to say */
	}
	syscall(SYS_exit_group, DRT_TRAP_STATUS(tf->vector & 0x7f));
}

uint64_t drt_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (uint64_t)hi << 32;
}

void drt_wrmsr(uint32_t msr, uint64_t value)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
		     : "memory");
}

uint64_t drt_read_cr2(void)
{
	uint64_t v;

	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

uint64_t drt_read_cr3(void)
{
	uint64_t v;

	asm volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

uint16_t drt_read_cs(void)
{
	uint16_t cs;

	asm volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

void drt_invlpg(const void *va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }

void drt_flush_tlb(void)
{
	uint64_t cr3 = drt_read_cr3();

	asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}
