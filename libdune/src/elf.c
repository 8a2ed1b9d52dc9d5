/* elf.c -- the original's ELF helpers: open a 64-bit ELF file (or image in memory),
 * iterate its program and section headers, load PT_LOAD segments. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dune.h"

static int read_at(struct dune_elf *elf, void *dst, size_t len, off_t off)
{
	if (elf->mem) {
		if (off < 0 || (size_t)off + len > (size_t)elf->len)
			return -EINVAL;
		memcpy(dst, elf->mem + off, len);
		return 0;
	}
	ssize_t n = pread(elf->fd, dst, len, off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EINVAL;
}

static int load_headers(struct dune_elf *elf)
{
	Elf64_Ehdr *h = &elf->hdr;
	int r;

	if ((r = read_at(elf, h, sizeof(*h), 0)) < 0)
		return r;
	if (memcmp(h->e_ident, ELFMAG, SELFMAG) || h->e_ident[EI_CLASS] != ELFCLASS64 ||
	    h->e_ident[EI_DATA] != ELFDATA2LSB || h->e_phentsize != sizeof(Elf64_Phdr) ||
	    (h->e_shnum && h->e_shentsize != sizeof(Elf64_Shdr)))
		return -ENOEXEC;
	if (h->e_phnum) {
		elf->phdr = calloc(h->e_phnum, sizeof(Elf64_Phdr));
		if (!elf->phdr)
			return -ENOMEM;
		if ((r = read_at(elf, elf->phdr, h->e_phnum * sizeof(Elf64_Phdr), (off_t)h->e_phoff)))
			return r;
	}
	if (h->e_shnum) {
		elf->shdr = calloc(h->e_shnum, sizeof(Elf64_Shdr));
		if (!elf->shdr)
			return -ENOMEM;
		if ((r = read_at(elf, elf->shdr, h->e_shnum * sizeof(Elf64_Shdr), (off_t)h->e_shoff)))
			return r;
		if (h->e_shstrndx < h->e_shnum) {
			Elf64_Shdr *s = &elf->shdr[h->e_shstrndx];
			elf->shdrstr = calloc(1, s->sh_size + 1);
			if (!elf->shdrstr)
				return -ENOMEM;
			if ((r = read_at(elf, elf->shdrstr, s->sh_size, (off_t)s->sh_offset)))
				return r;
		}
	}
	return 0;
}

int dune_elf_open(struct dune_elf *elf, const char *path)
{
	void *priv = elf->priv;
	int r;

	memset(elf, 0, sizeof(*elf));
	elf->priv = priv;
	elf->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (elf->fd < 0)
		return -errno;
	if ((r = load_headers(elf)) < 0) {
		dune_elf_close(elf);
		return r;
	}
	return 0;
}

int dune_elf_open_mem(struct dune_elf *elf, void *mem, int len)
{
	void *priv = elf->priv;
	int r;

	memset(elf, 0, sizeof(*elf));
	elf->priv = priv;
	elf->fd = -1;
	elf->mem = mem;
	elf->len = len;
	if ((r = load_headers(elf)) < 0) {
		dune_elf_close(elf);
		return r;
	}
	return 0;
}

int dune_elf_close(struct dune_elf *elf)
{
	free(elf->phdr);
	free(elf->shdr);
	free(elf->shdrstr);
	elf->phdr = NULL;
	elf->shdr = NULL;
	elf->shdrstr = NULL;
	if (elf->fd >= 0)
		close(elf->fd);
	elf->fd = -1;
	return 0;
}

int dune_elf_iter_ph(struct dune_elf *elf, dune_elf_phcb cb)
{
	for (int i = 0; i < elf->hdr.e_phnum; i++) {
		int r = cb(elf, &elf->phdr[i]);
		if (r)
			return r;
	}
	return 0;
}

int dune_elf_iter_sh(struct dune_elf *elf, dune_elf_shcb cb)
{
	for (int i = 0; i < elf->hdr.e_shnum; i++) {
		const char *name = elf->shdrstr ? elf->shdrstr + elf->shdr[i].sh_name : "";
		int r = cb(elf, name, i, &elf->shdr[i]);
		if (r)
			return r;
	}
	return 0;
}

int dune_elf_dump(struct dune_elf *elf)
{
	printf("ELF: type %u machine %u entry 0x%lx, %u program headers, %u sections\n",
	       elf->hdr.e_type, elf->hdr.e_machine, (unsigned long)elf->hdr.e_entry,
	       elf->hdr.e_phnum, elf->hdr.e_shnum);
	for (int i = 0; i < elf->hdr.e_phnum; i++) {
		Elf64_Phdr *p = &elf->phdr[i];
		printf("  ph %2d: type %#x flags %c%c%c off 0x%lx vaddr 0x%lx filesz 0x%lx "
		       "memsz 0x%lx\n",
		       i, p->p_type, p->p_flags & PF_R ? 'r' : '-', p->p_flags & PF_W ? 'w' : '-',
		       p->p_flags & PF_X ? 'x' : '-', (unsigned long)p->p_offset,
		       (unsigned long)p->p_vaddr, (unsigned long)p->p_filesz,
		       (unsigned long)p->p_memsz);
	}
	for (int i = 0; i < elf->hdr.e_shnum; i++)
		printf("  sh %2d: %s\n", i,
		       elf->shdrstr ? elf->shdrstr + elf->shdr[i].sh_name : "?");
	return 0;
}

int dune_elf_load_ph(struct dune_elf *elf, Elf64_Phdr *phdr, off_t off)
{
	if (phdr->p_type != PT_LOAD)
		return -EINVAL;
	if (phdr->p_filesz > phdr->p_memsz)
		return -ENOEXEC;
	uintptr_t va = (uintptr_t)(phdr->p_vaddr + off);
	uintptr_t start = PGADDR(va), end = (va + phdr->p_memsz + PGSIZE - 1) & ~(uintptr_t)PGMASK;
	void *p = mmap((void *)start, end - start, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	int r = read_at(elf, (void *)va, phdr->p_filesz, (off_t)phdr->p_offset);
	if (r < 0)
		return r;
	int prot = (phdr->p_flags & PF_R ? PROT_READ : 0) | (phdr->p_flags & PF_W ? PROT_WRITE : 0) |
		   (phdr->p_flags & PF_X ? PROT_EXEC : 0);
	if (mprotect((void *)start, end - start, prot) < 0)
		return -errno;
	return 0;
}
