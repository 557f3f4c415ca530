/* Unit tests of pginad's ELF reader (src/daemon/pginad-preload.c: elf_needed): the DT_NEEDED
 * names of a real shared object, then hostile images — crafted headers and thousands of seeded
 * corruptions and truncations of the real one. Each image lives in a buffer of exactly its size,
 * so a read past it is an AddressSanitizer error in the sanitizer build. */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/pginad-preload.c"

static unsigned char *image;
static size_t image_len;
static const unsigned char *cur; /* the image elf_needed is reading */
static size_t cur_len;
static char names[2048];
static unsigned nnames;

static void collect(const char *name) {
        /* Every name handed out lies inside the image and ends inside it. */
        assert_true((const unsigned char *)name >= cur && (const unsigned char *)name < cur + cur_len);
        assert_non_null(memchr(name, 0, cur_len - (size_t)((const unsigned char *)name - cur)));
        if (strlen(names) + strlen(name) + 2 < sizeof names) {
                strcat(names, name);
                strcat(names, " ");
        }
        nnames++;
}

static int parse(const unsigned char *f, size_t len) {
        unsigned char *copy = malloc(len ? len : 1);
        int r;

        assert_non_null(copy);
        memcpy(copy, f, len);
        cur = copy;
        cur_len = len;
        names[0] = 0;
        nnames = 0;
        r = elf_needed(copy, len, collect);
        free(copy);
        return r;
}

/* libcmocka: a shared object of the system (no RUNPATH) that needs libc. */
static int setup(void **state) {
        Dl_info info;
        struct stat st;
        int fd;

        if (!dladdr((void *)_cmocka_run_group_tests, &info) || !info.dli_fname)
                return -1;
        fd = open(info.dli_fname, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -1;
        image_len = (size_t)st.st_size;
        image = malloc(image_len);
        if (!image || read(fd, image, image_len) != (ssize_t)image_len)
                return -1;
        close(fd);
        return 0;
}

static int teardown(void **state) {
        free(image);
        return 0;
}

static void test_real_library(void **state) {
        assert_int_equal(parse(image, image_len), 0);
        assert_non_null(strstr(names, "libc.so.6 "));
}

static Elf64_Phdr *phdr(unsigned char *f, unsigned i) {
        Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
        return (Elf64_Phdr *)(f + eh->e_phoff + (size_t)i * sizeof(Elf64_Phdr));
}

static Elf64_Dyn *dynamic(unsigned char *f, size_t *n) {
        Elf64_Ehdr *eh = (Elf64_Ehdr *)f;

        for (unsigned i = 0; i < eh->e_phnum; i++)
                if (phdr(f, i)->p_type == PT_DYNAMIC) {
                        *n = phdr(f, i)->p_filesz / sizeof(Elf64_Dyn);
                        return (Elf64_Dyn *)(f + phdr(f, i)->p_offset);
                }
        return NULL;
}

static void test_crafted_headers(void **state) {
        unsigned char *f = malloc(image_len);
        Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
        Elf64_Dyn *d;
        size_t n = 0;

        assert_non_null(f);
#define FRESH() memcpy(f, image, image_len)
        FRESH();
        eh->e_ident[EI_CLASS] = ELFCLASS32;
        assert_int_equal(parse(f, image_len), -EBADMSG);
        FRESH();
        eh->e_phoff += 4; /* program headers off their alignment */
        assert_int_equal(parse(f, image_len), -EBADMSG);
        FRESH();
        eh->e_phoff = image_len - 8;
        assert_int_equal(parse(f, image_len), -EBADMSG);
        FRESH();
        eh->e_phnum = 0xffff;
        assert_int_equal(parse(f, image_len), -EBADMSG);
        FRESH();
        eh->e_phentsize = 32;
        assert_int_equal(parse(f, image_len), -EBADMSG);

        FRESH();
        d = dynamic(f, &n);
        assert_non_null(d);
        for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++)
                if (d[i].d_tag == DT_NEEDED)
                        d[i].d_un.d_val = 0xffffffff; /* past the string table */
        assert_int_equal(parse(f, image_len), -EBADMSG);

        FRESH();
        d = dynamic(f, &n);
        for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++)
                if (d[i].d_tag == DT_STRSZ)
                        d[i].d_un.d_val = image_len; /* a string table past the end */
        assert_int_equal(parse(f, image_len), -EBADMSG);

        FRESH();
        d = dynamic(f, &n);
        for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++)
                if (d[i].d_tag == DT_STRTAB)
                        d[i].d_un.d_ptr = 0x7fffffff0000; /* in no segment */
        assert_int_equal(parse(f, image_len), -EBADMSG);

        FRESH();
        d = dynamic(f, &n);
        for (size_t i = 0; i < n && d[i].d_tag != DT_NULL; i++)
                if (d[i].d_tag == DT_NEEDED) {
                        d[i].d_tag = DT_RUNPATH; /* its own search path: not ours to preload */
                        break;
                }
        assert_int_equal(parse(f, image_len), -EBADMSG);

        FRESH();
        for (unsigned i = 0; i < eh->e_phnum; i++)
                if (phdr(f, i)->p_type == PT_DYNAMIC)
                        phdr(f, i)->p_filesz = image_len; /* runs past the end */
        assert_int_equal(parse(f, image_len), -EBADMSG);
#undef FRESH
        free(f);
}

/* Truncated anywhere: an error or (cut after everything it needs) the same answer. */
static void test_truncations(void **state) {
        for (size_t len = 0; len < image_len; len += len < 8192 ? 1 : 997) {
                int r = parse(image, len);
                assert_true(r == 0 || r == -EBADMSG);
        }
}

/* Seeded corruption: 4000 images with 1-8 random bytes changed, in the headers, the program
 * headers, the dynamic section or anywhere. Never a crash or a read outside the image. */
static void test_corruptions(void **state) {
        unsigned char *f = malloc(image_len);
        Elf64_Ehdr *eh = (Elf64_Ehdr *)image;
        size_t ndyn = 0, dyn_off;
        unsigned ok = 0, bad = 0;

        assert_non_null(f);
        memcpy(f, image, image_len);
        dyn_off = (size_t)((unsigned char *)dynamic(f, &ndyn) - f);
        srandom(6);
        for (int it = 0; it < 4000; it++) {
                int k = 1 + (int)(random() % 8);

                memcpy(f, image, image_len);
                while (k--) {
                        size_t at;

                        switch (random() % 4) {
                        case 0:
                                at = (size_t)random() % sizeof(Elf64_Ehdr);
                                break;
                        case 1:
                                at = eh->e_phoff + (size_t)random() % ((size_t)eh->e_phnum * sizeof(Elf64_Phdr));
                                break;
                        case 2:
                                at = dyn_off + (size_t)random() % (ndyn * sizeof(Elf64_Dyn));
                                break;
                        default:
                                at = (size_t)random() % image_len;
                        }
                        f[at] = (unsigned char)random();
                }
                if (parse(f, image_len) == 0)
                        ok++;
                else
                        bad++;
        }
        /* Both outcomes happen: the corruptions reach what the reader checks. */
        assert_true(ok > 0 && bad > 0);
        free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_real_library),
                cmocka_unit_test(test_crafted_headers),
                cmocka_unit_test(test_truncations),
                cmocka_unit_test(test_corruptions),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
