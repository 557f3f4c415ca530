/* The upload's read-back behind the writer (pgsmb-readback.c), against a file:// store in a
 * temporary directory: a faithful store passes, bytes changed or cut on the server after the
 * write are caught, a writer that gives up stops the reader, and a missing file is an error. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmocka.h>

#include "pgsmb-readback.h"
#include "pgsmb-store.h"

#define DATA_BYTES (5u * 1024 * 1024 + 777) /* five whole chunks and a tail */

struct fixture {
        char root[64];
        char url[96];
        struct store *s;
        unsigned char *data;
        unsigned char sha[READBACK_DIGEST_LEN]; /* XXH3-128 of data, as the writer sends it */
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        strcpy(f->root, "/tmp/test-pgsmb-readback.XXXXXX");
        assert_non_null(mkdtemp(f->root));
        snprintf(f->url, sizeof f->url, "file://%s", f->root);
        assert_int_equal(store_open(f->url, NULL, 5, &f->s, NULL, 0), 0);
        f->data = malloc(DATA_BYTES);
        assert_non_null(f->data);
        for (size_t i = 0; i < DATA_BYTES; i++)
                f->data[i] = (unsigned char)(i * 7 + i / 4096);
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(f->data, DATA_BYTES));
        memcpy(f->sha, c.digest, sizeof f->sha);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        char p[128];
        store_close(f->s);
        snprintf(p, sizeof p, "%s/up", f->root);
        unlink(p);
        rmdir(f->root);
        free(f->data);
        free(f);
        return 0;
}

/* Write the data in 1 MiB pieces, telling the reader after each; `tell` = 0 tells nothing until
 * the end (so what the reader sees is whatever the store holds at finish). */
static void write_all_pieces(struct fixture *f, struct store_file *w, struct readback *rb, bool tell) {
        size_t off = 0;
        while (off < DATA_BYTES) {
                size_t n = DATA_BYTES - off < (1u << 20) ? DATA_BYTES - off : (1u << 20);
                assert_int_equal(store_write(w, f->data + off, n), 0);
                off += n;
                if (tell)
                        readback_advance(rb, off);
        }
}

/* Upload f->data as "up" with a reader behind it (told of each piece when `tell`); the
 * writer has closed the file when this returns the reader. */
static struct readback *upload_with_reader(struct fixture *f, bool tell) {
        struct store_file *w;
        struct readback *rb;
        assert_int_equal(store_open_write(f->s, "up", &w), 0);
        assert_int_equal(readback_start(f->url, NULL, 5, "up", -1, &rb), 0);
        write_all_pieces(f, w, rb, tell);
        assert_int_equal(store_close_file(w), 0);
        return rb;
}

static void test_readback_behind_the_writer_matches_a_faithful_store(void **state) {
        struct fixture *f = *state;
        struct readback *rb = upload_with_reader(f, true);
        char err[512] = "";
        int r = readback_finish(rb, true, DATA_BYTES, f->sha, err, sizeof err);
        if (r != 0)
                fail_msg("read-back: %d %s", r, err);
}

/* Change one byte of the stored file behind the writer's back. */
static void tamper(struct fixture *f, off_t at) {
        char p[128];
        snprintf(p, sizeof p, "%s/up", f->root);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        unsigned char b = f->data[at] ^ 0x5a;
        assert_int_equal(pwrite(fd, &b, 1, at), 1);
        close(fd);
}

static void test_readback_catches_a_byte_changed_on_the_server(void **state) {
        struct fixture *f = *state;
        struct readback *rb = upload_with_reader(f, false);
        char err[512] = "";
        tamper(f, 3 * 1024 * 1024 + 5);
        assert_int_equal(readback_finish(rb, true, DATA_BYTES, f->sha, err, sizeof err), -EIO);
        assert_non_null(strstr(err, "do not match"));
}

static void test_readback_catches_a_file_cut_short_on_the_server(void **state) {
        struct fixture *f = *state;
        struct readback *rb = upload_with_reader(f, false);
        char err[512] = "", p[128];
        snprintf(p, sizeof p, "%s/up", f->root);
        assert_int_equal(truncate(p, DATA_BYTES - 1), 0);
        assert_int_equal(readback_finish(rb, true, DATA_BYTES, f->sha, err, sizeof err), -EIO);
        assert_non_null(strstr(err, "do not match"));
}

static void test_readback_stops_when_the_writer_gives_up(void **state) {
        struct fixture *f = *state;
        struct store_file *w;
        struct readback *rb;
        char err[512] = "";
        assert_int_equal(store_open_write(f->s, "up", &w), 0);
        assert_int_equal(readback_start(f->url, NULL, 5, "up", -1, &rb), 0);
        assert_int_equal(store_write(w, f->data, 4096), 0);
        readback_advance(rb, 4096);
        assert_int_equal(readback_finish(rb, false, 0, f->sha, err, sizeof err), -ECANCELED);
        assert_int_equal(store_close_file(w), 0);
}

static void test_readback_of_a_missing_file_is_an_error(void **state) {
        struct fixture *f = *state;
        struct readback *rb;
        char err[512] = "";
        assert_int_equal(readback_start(f->url, NULL, 5, "nothing-here", -1, &rb), 0);
        /* The reader has ended by now: telling it more must not kill the writer (SIGPIPE is
         * not ignored in this test, as it is in pginad). */
        usleep(300 * 1000);
        readback_advance(rb, 4096);
        int r = readback_finish(rb, true, DATA_BYTES, f->sha, err, sizeof err);
        assert_true(r < 0 && r != -EIO);
        assert_non_null(strstr(err, "read-back"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
                T(test_readback_behind_the_writer_matches_a_faithful_store),
                T(test_readback_catches_a_byte_changed_on_the_server),
                T(test_readback_catches_a_file_cut_short_on_the_server),
                T(test_readback_stops_when_the_writer_gives_up),
                T(test_readback_of_a_missing_file_is_an_error),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
