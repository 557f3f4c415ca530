/* The libraries the configured plugins link against, loaded once into pginad.
 *
 * Every request runs in a fresh worker that dlopen()s its plugins; pgSMB alone pulls in
 * libsmbclient and about 100 libraries behind it, and mapping and relocating them took ~70 ms of
 * CPU per worker (perf: ld.so and page faults), half of a logon that downloads nothing. A
 * library pginad already holds is found by its soname and costs a worker nothing: it inherits
 * the mapping, relocated, from fork(). So pginad loads each plugin's DT_NEEDED libraries (read
 * from the ELF file, not by loading the plugin): the plugin itself is still dlopen()ed, fresh
 * from disk, by every worker, and pginad runs no plugin code (the probe process does the
 * loading checks). What pginad does run is the libraries' own initialisers, as any program
 * linked against them would; `preload_libraries = false` turns this off.
 *
 * Never dlclose()d: a library unloaded from a process that forks workers gains nothing and
 * risks its destructors. A library upgraded on disk is used from the next start of pginad, as
 * with any daemon linked to it. */
#include "pginad.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define PLUGIN_FILE_MAX (64u << 20)
#define PRELOAD_MAX 64

static struct {
        char *name;
        void *dl;
} loaded[PRELOAD_MAX];
static size_t nloaded;

/* The file offset of virtual address va, through the PT_LOAD segments. */
static int va_to_offset(const unsigned char *f, size_t len, const Elf64_Ehdr *eh, uint64_t va,
                        uint64_t *off) {
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff + (uint64_t)i * sizeof *ph);

                if (ph->p_type == PT_LOAD && va >= ph->p_vaddr && va - ph->p_vaddr < ph->p_filesz) {
                        *off = va - ph->p_vaddr + ph->p_offset;
                        return *off < len ? 0 : -EBADMSG;
                }
        }
        return -EBADMSG;
}

/* Call fn for each DT_NEEDED name of the ELF image f (a 64-bit, native-endian shared object).
 * A plugin with an RPATH/RUNPATH is skipped: its libraries are found where only its own
 * dlopen() would look. -EBADMSG for anything unexpected (then nothing is preloaded for it). */
static int elf_needed(const unsigned char *f, size_t len, void (*fn)(const char *name)) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
        const Elf64_Dyn *dyn = NULL;
        uint64_t ndyn = 0, strtab_va = 0, strsz = 0, stroff;
        bool have_strtab = false;

        if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
            eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
            eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len || eh->e_phoff % 8 ||
            (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
                return -EBADMSG;
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff + (uint64_t)i * sizeof *ph);

                if (ph->p_type != PT_DYNAMIC)
                        continue;
                if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset || ph->p_offset % 8)
                        return -EBADMSG;
                dyn = (const Elf64_Dyn *)(f + ph->p_offset);
                ndyn = ph->p_filesz / sizeof *dyn;
        }
        if (!dyn)
                return -EBADMSG;
        for (uint64_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
                if (dyn[i].d_tag == DT_RPATH || dyn[i].d_tag == DT_RUNPATH)
                        return -EBADMSG;
                if (dyn[i].d_tag == DT_STRTAB) {
                        strtab_va = dyn[i].d_un.d_ptr;
                        have_strtab = true;
                } else if (dyn[i].d_tag == DT_STRSZ)
                        strsz = dyn[i].d_un.d_val;
        }
        if (!have_strtab || va_to_offset(f, len, eh, strtab_va, &stroff) < 0 || strsz > len - stroff)
                return -EBADMSG;
        for (uint64_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
                const char *name;

                if (dyn[i].d_tag != DT_NEEDED)
                        continue;
                if (dyn[i].d_un.d_val >= strsz)
                        return -EBADMSG;
                name = (const char *)f + stroff + dyn[i].d_un.d_val;
                if (!memchr(name, 0, strsz - dyn[i].d_un.d_val))
                        return -EBADMSG;
                fn(name);
        }
        return 0;
}

static void preload_one(const char *name) {
        void *dl;

        /* a bare soname only (never a path out of a plugin file), and not the C library: it is
         * ours already */
        if (strchr(name, '/') || strncmp(name, "libc.so.", 8) == 0 || strncmp(name, "ld-linux", 8) == 0)
                return;
        for (size_t i = 0; i < nloaded; i++)
                if (streq(loaded[i].name, name))
                        return;
        if (nloaded == PRELOAD_MAX)
                return;
        dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                log_debug("preload of %s skipped: %s", name, dlerror());
                return;
        }
        loaded[nloaded].name = strdup(name);
        if (!loaded[nloaded].name) {
                dlclose(dl);
                return;
        }
        loaded[nloaded++].dl = dl;
}

static void preload_plugin(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        void *f;

        /* The probe has checked this file (root-owned, not writable by others) before a
         * configuration is taken; the same checks here, so a file swapped since is not read. */
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
            (st.st_mode & 022) || st.st_size < (off_t)sizeof(Elf64_Ehdr) ||
            (uint64_t)st.st_size > PLUGIN_FILE_MAX)
                return;
        f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f == MAP_FAILED)
                return;
        if (elf_needed(f, (size_t)st.st_size, preload_one) < 0)
                log_debug("%s: not an ELF file whose libraries pginad can preload", path);
        munmap(f, (size_t)st.st_size);
}

void preload_libraries(const struct conf *conf) {
        char **names = NULL;
        size_t n, before = nloaded;

        if (!conf->preload_libraries)
                return;
        n = conf_plugin_names(conf, &names);
        for (size_t i = 0; i < n; i++) {
                char path[PATH_MAX];

                if (snprintf(path, sizeof path, "%s/%s.so", conf->plugin_dir, names[i]) < (int)sizeof path)
                        preload_plugin(path);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (nloaded > before)
                log_debug("preloaded %zu libraries the plugins link against", nloaded - before);
}
