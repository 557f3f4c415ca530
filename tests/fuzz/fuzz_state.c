/* libFuzzer target: the state files pgina reads back, the input being the file's content:
 * pgSMB's local <user>.state (pgsmb_state_load), the store's <archive>.meta (pgsmb_meta_read,
 * through a file:// store) and pginad's session cache state_dir/sessions (cache_load). Each input
 * goes to all three readers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-common.h"
#include "log.h"
#include "pginad.h"
#include "pgsmb-state.h"
#include "pgsmb-store.h"
#include "util.h"

static char dir[PATH_MAX];
static struct store *store;

static void remove_dir(void) {
        store_close(store);
        (void)fuzz_remove_tree(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *tmp = getenv("TMPDIR") ?: "/tmp";
        char url[PATH_MAX + 16];

        log_set_level(-1);
        FUZZ_ASSERT(snprintf(dir, sizeof dir, "%s/pgina-fuzz-state.XXXXXX", tmp) < (int)sizeof dir);
        FUZZ_ASSERT(mkdtemp(dir));
        snprintf(url, sizeof url, "file://%s", dir);
        FUZZ_ASSERT(store_open(url, NULL, 5, &store, NULL, 0) == 0);
        atexit(remove_dir);
        return 0;
}

static void put_file(const char *name, const uint8_t *data, size_t size) {
        char path[PATH_MAX + 64];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        FUZZ_ASSERT(fd >= 0);
        fuzz_write_all(fd, data, size);
}

/* A NUL-terminated string of at most max - 1 bytes, no line break. */
static void check_field(const char *s, size_t max) {
        size_t n = strnlen(s, max);
        FUZZ_ASSERT(n < max && !strpbrk(s, "\r\n"));
}

static void state_file(const uint8_t *data, size_t size) {
        struct pgsmb_state s;

        put_file("alice.state", data, size);
        FUZZ_ASSERT(pgsmb_state_load(dir, "alice", &s) == 0);
        check_field(s.version, sizeof s.version);
}

static void meta_file(const uint8_t *data, size_t size) {
        struct pgsmb_meta m;
        int r;

        put_file("alice.tar.zst.meta", data, size);
        r = pgsmb_meta_read(store, "alice.tar.zst.meta", &m);
        FUZZ_ASSERT(r == 0 || r == -EBADMSG);
        check_field(m.version, sizeof m.version);
        check_field(m.sha256, sizeof m.sha256);
        check_field(m.host, sizeof m.host);
        if (r == 0)
                FUZZ_ASSERT(m.version[0] && strlen(m.sha256) == 64);
}

static void sessions_file(const uint8_t *data, size_t size) {
        struct cache c;

        put_file("sessions", data, size);
        FUZZ_ASSERT(cache_load(&c, dir) == 0);
        for (size_t i = 0; i < c.n; i++) {
                const struct session *s = &c.v[i];
                FUZZ_ASSERT(s->id && s->nentries > 0);
                FUZZ_ASSERT(s->logind && (!*s->logind || logind_session_id_valid(s->logind)));
                FUZZ_ASSERT(cache_find(&c, s->id));
                for (size_t k = 0; k < s->nentries; k++)
                        FUZZ_ASSERT(s->entries[k].user && s->entries[k].record &&
                                    !s->entries[k].password);
        }
        cache_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        state_file(data, size);
        meta_file(data, size);
        sessions_file(data, size);
        return 0;
}
