/* pgSMB store format 2 in a file:// store: every crash point of a commit leaves a readable store
 * (the previous version, or the new one), an exclusive create refuses a taken number, damaged
 * manifests are skipped, prune keeps what kept versions name and another machine's recent work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pgsmb-manifest.h"
#include "pgsmb-store.h"
#include "pgsmb-v2.h"

static char dir[256];
static struct store *st;
static const struct v2_profile P = {.dir = "alice", .filename = "alice.tar.zst"};

static int setup(void **state) {
        char url[300], err[STORE_ERROR_MAX];
        (void)state;
        snprintf(dir, sizeof dir, "/tmp/test-pgsmb-v2-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(url, sizeof url, "file://%s", dir);
        assert_int_equal(store_open(url, NULL, 5, &st, err, sizeof err), 0);
        assert_int_equal(store_mkdirs(st, "alice"), 0);
        return 0;
}

static int teardown(void **state) {
        char cmd[300];
        (void)state;
        store_close(st);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static void put_file(const char *rel, const void *data, size_t len) {
        struct store_file *f;
        assert_int_equal(store_open_write(st, rel, &f), 0);
        assert_int_equal(store_write(f, data, len), 0);
        assert_int_equal(store_close_file(f), 0);
}

/* Version `number` with one file "f" in the archive `arch`. */
static void make_version(struct manifest *m, uint64_t number, uint64_t parent, const char *arch) {
        struct manifest_archive a = {.size = 3};
        struct scan s;
        struct scan_entry e = {.flag = '+', .type = 'f', .mode = 0644, .size = number, .mtime_s = (int64_t)number,
                               .path = strdup("f")};

        snprintf(a.name, sizeof a.name, "%s", arch);
        memset(a.sha256, 'b', 64);
        scan_init(&s);
        assert_int_equal(scan_add(&s, &e), 0);
        assert_int_equal(scan_sort(&s), 0);
        assert_int_equal(manifest_from_scan(m, NULL, &s, &a), 0);
        scan_free(&s);
        m->number = number;
        m->parent = parent;
        manifest_new_id(m->id);
        snprintf(m->user, sizeof m->user, "alice");
        snprintf(m->host, sizeof m->host, "here");
        m->time = 1;
}

static uint64_t current(void) {
        struct v2_state vs;
        char err[600];
        uint64_t n;

        assert_int_equal(v2_load(st, &P, &vs, err, sizeof err), 0);
        n = vs.cur.number;
        v2_state_free(&vs);
        return n;
}

static void test_crash_points(void **state) {
        (void)state;
        struct manifest m1, m2;
        struct pbuf b;
        char err[600], name[300], rel[1200];
        uint64_t size;

        make_version(&m1, 1, 0, "alice.tar.zst.a-here-1");
        put_file("alice/alice.tar.zst.a-here-1", "abc", 3);
        assert_int_equal(v2_commit(st, &P, &m1, &size, err, sizeof err), 0);
        assert_int_equal(current(), 1);

        /* crash point 1: the delta cut mid-upload, 2: uploaded whole, no manifest */
        put_file("alice/alice.tar.zst.a-here-2", "ab", 2);
        assert_int_equal(current(), 1);
        /* crash point 3: the manifest cut at every byte */
        make_version(&m2, 2, 1, "alice.tar.zst.a-here-2");
        pbuf_init(&b);
        assert_int_equal(manifest_format(&m2, &b), 0);
        manifest_file_name(P.filename, 2, name, sizeof name);
        v2_rel(&P, name, rel, sizeof rel);
        for (size_t cut = 0; cut < b.len; cut += 7) {
                put_file(rel, b.data, cut);
                assert_int_equal(current(), 1);
                assert_int_equal(store_unlink(st, rel), 0);
        }
        /* the slot taken by a dead writer's half: the exclusive create says so */
        put_file(rel, b.data, b.len / 2);
        assert_int_equal(v2_commit(st, &P, &m2, &size, err, sizeof err), -EEXIST);
        {
                struct v2_state vs;
                assert_int_equal(v2_load(st, &P, &vs, err, sizeof err), 0);
                assert_int_equal(vs.cur.number, 1);
                assert_int_equal(vs.top, 2);
                assert_int_equal(vs.damaged, 1);
                assert_non_null(strstr(vs.damaged_why, "alice.tar.zst.m00000002"));
                v2_state_free(&vs);
        }
        /* the next number commits, past it */
        m2.number = 3;
        m2.parent = 1;
        assert_int_equal(v2_commit(st, &P, &m2, &size, err, sizeof err), 0);
        assert_int_equal(size, b.len);
        assert_int_equal(current(), 3);
        /* a manifest that says another number than its name is refused */
        m1.number = 9;
        pbuf_reset(&b);
        assert_int_equal(manifest_format(&m1, &b), 0);
        put_file("alice/alice.tar.zst.m00000010", b.data, b.len);
        assert_int_equal(current(), 3);
        assert_int_equal(store_unlink(st, "alice/alice.tar.zst.m00000010"), 0);
        pbuf_free(&b);
        manifest_free(&m1);
        manifest_free(&m2);
}

static bool exists(const char *rel) {
        struct store_stat ss;
        return store_stat(st, rel, &ss) == 0;
}

static void test_prune(void **state) {
        (void)state;
        struct manifest m[6];
        struct v2_state vs;
        char err[600];

        for (unsigned i = 1; i <= 5; i++) {
                char arch[64], rel[128];
                snprintf(arch, sizeof arch, "alice.tar.zst.a-here-000000000000000%u", i);
                snprintf(rel, sizeof rel, "alice/%s", arch);
                put_file(rel, "x", 1);
                make_version(&m[i], 10 + i, 10 + i - 1, arch);
                assert_int_equal(v2_commit(st, &P, &m[i], NULL, err, sizeof err), 0);
        }
        put_file("alice/alice.tar.zst.a-here-00000000000000a1", "x", 1); /* this host's failed upload */
        put_file("alice/alice.tar.zst.a-other-busy", "x", 1); /* another machine's, in progress */
        /* Review 2 finding 10: this host's uploads in progress (a logoff's delta while a
         * compaction prunes, or the other way round) are marked: one held stays; a mark its
         * process left behind (closed, not removed) is stale, and the archive goes with it */
        char marks[700], stale_mark[800];
        snprintf(marks, sizeof marks, "%s/alice-marks", dir);
        put_file("alice/alice.tar.zst.a-here-00000000000000b1", "x", 1);
        put_file("alice/alice.tar.zst.a-here-00000000000000b2", "x", 1);
        int held = v2_upload_mark(marks, "alice.tar.zst.a-here-00000000000000b1");
        assert_true(held >= 0);
        int dead = v2_upload_mark(marks, "alice.tar.zst.a-here-00000000000000b2");
        assert_true(dead >= 0);
        close(dead);
        snprintf(stale_mark, sizeof stale_mark, "%s.up.alice.tar.zst.a-here-00000000000000b2", marks);
        assert_int_equal(access(stale_mark, F_OK), 0);
        assert_true(v2_upload_mark(marks, "alice.tar.zst.a-here-00000000000000b1") == -EWOULDBLOCK);
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        /* v2_prune_due (the logon's and the logoff's test, from the listing alone): 1, 2
         * (damaged), 3, 11 and 12 are older than keep_versions = 2 keep; 4 allow all but 1-3 */
        assert_int_equal(v2_prune_due(&P, &vs, &m[5], 2), 5);
        assert_int_equal(v2_prune_due(&P, &vs, &m[5], 4), 3);
        assert_int_equal(v2_prune_due(&P, &vs, &m[5], 14), 0);
        v2_prune(st, &P, &vs, &m[5], 2, "here", marks, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_true(exists("alice/alice.tar.zst.a-here-00000000000000b1"));
        assert_false(exists("alice/alice.tar.zst.a-here-00000000000000b2"));
        assert_int_equal(access(stale_mark, F_OK), -1);
        /* Review 3: an upload that committed after a prune listed the store keeps its mark
         * until that prune ends (the prune read no manifest naming it): the unmark waits for
         * the prune's lock */
        char mark_file[800];
        snprintf(mark_file, sizeof mark_file, "%s.up.alice.tar.zst.a-here-00000000000000b1", marks);
        int prune = v2_prune_lock(marks);
        assert_true(prune >= 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(prune); /* (a forked copy shares the lock: the child is the other process) */
                v2_upload_unmark(held, marks, "alice.tar.zst.a-here-00000000000000b1");
                _exit(0);
        }
        usleep(200000);
        assert_int_equal(access(mark_file, F_OK), 0); /* still marked: the prune runs */
        close(prune);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(access(mark_file, F_OK), -1);
        close(held);
        assert_false(v2_upload_marked(marks, "alice.tar.zst.a-here-00000000000000b1"));
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune(st, &P, &vs, &m[5], 2, "here", marks, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_false(exists("alice/alice.tar.zst.a-here-00000000000000b1"));
        /* kept: 15 (current), 14 and 13 (keep_versions = 2) and their archives */
        assert_true(exists("alice/alice.tar.zst.m00000015"));
        assert_true(exists("alice/alice.tar.zst.m00000014"));
        assert_true(exists("alice/alice.tar.zst.m00000013"));
        assert_false(exists("alice/alice.tar.zst.m00000012"));
        assert_false(exists("alice/alice.tar.zst.m00000001"));
        assert_true(exists("alice/alice.tar.zst.a-here-0000000000000005"));
        assert_true(exists("alice/alice.tar.zst.a-here-0000000000000003"));
        assert_false(exists("alice/alice.tar.zst.a-here-0000000000000002"));
        assert_false(exists("alice/alice.tar.zst.a-here-00000000000000a1"));
        assert_true(exists("alice/alice.tar.zst.a-other-busy"));
        /* the damaged manifest below the kept ones goes too; and another machine's old work */
        assert_false(exists("alice/alice.tar.zst.m00000002"));
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        /* pruned: no version too old is left */
        assert_int_equal(v2_prune_due(&P, &vs, &m[5], 2), 0);
        v2_prune(st, &P, &vs, &m[5], 2, "here", NULL, (int64_t)time(NULL) + 7200, 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_false(exists("alice/alice.tar.zst.a-other-busy"));

        /* Another machine's version above the one this machine knows keeps its archive, past
         * the grace too (the review: it was not read, its archive went). */
        {
                struct manifest above;
                put_file("alice/alice.tar.zst.a-other-above", "x", 1);
                make_version(&above, 16, 15, "alice.tar.zst.a-other-above");
                assert_int_equal(v2_commit(st, &P, &above, NULL, err, sizeof err), 0);
                manifest_free(&above);
        }
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune(st, &P, &vs, &m[5], 2, "here", NULL, (int64_t)time(NULL) + 7200, 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_true(exists("alice/alice.tar.zst.a-other-above"));
        assert_true(exists("alice/alice.tar.zst.m00000016"));

        /* A kept manifest that cannot be read now (not damaged: the store fails on it) may name
         * any archive: the prune removes none (the review: it removed its archives). Here the
         * file store refuses a symlink (ELOOP). */
        {
                char from[600], to[600];
                snprintf(from, sizeof from, "%s/alice/alice.tar.zst.m00000014", dir);
                snprintf(to, sizeof to, "%s/alice/m14.saved", dir);
                assert_int_equal(rename(from, to), 0);
                assert_int_equal(symlink("m14.saved", from), 0);
        }
        put_file("alice/alice.tar.zst.a-here-00000000000000a2", "x", 1);
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune(st, &P, &vs, &m[5], 2, "here", NULL, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_true(exists("alice/alice.tar.zst.a-here-0000000000000004"));
        assert_true(exists("alice/alice.tar.zst.a-here-00000000000000a2"));

        /* v2_prune_known: a kept manifest the caller holds (a logoff's base) is not read again
         * (14 cannot be read now, yet the prune goes on) and its archives stay; one that is not
         * among the kept ones is ignored, and the prune reads as before (and stops at 14). */
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune_known(st, &P, &vs, &m[5], &m[1], 2, "here", NULL, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_true(exists("alice/alice.tar.zst.a-here-00000000000000a2"));
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune_known(st, &P, &vs, &m[5], &m[4], 2, "here", NULL, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_false(exists("alice/alice.tar.zst.a-here-00000000000000a2"));
        assert_true(exists("alice/alice.tar.zst.a-here-0000000000000004"));
        assert_true(exists("alice/alice.tar.zst.a-here-0000000000000003"));
        assert_true(exists("alice/alice.tar.zst.a-here-0000000000000005"));
        for (unsigned i = 1; i <= 5; i++)
                manifest_free(&m[i]);
}

/* A version committed after the prune listed the store (an admin's pginactl profile restore of
 * an old version, on another machine) names an archive no listed manifest names: the prune reads
 * the store's manifests again before it removes archives, and keeps it. Before, version 6 named
 * an archive the prune had removed: the current version could not be restored anywhere. */
static void test_prune_after_listing(void **state) {
        (void)state;
        struct manifest m[6], again;
        struct v2_state vs;
        char err[600], cmd[400];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'/alice/*", dir); /* the other tests' versions */
        assert_int_equal(system(cmd), 0);
        for (unsigned i = 1; i <= 5; i++) {
                char arch[64], rel[128];
                snprintf(arch, sizeof arch, "alice.tar.zst.a-here-00000000000000c%u", i);
                snprintf(rel, sizeof rel, "alice/%s", arch);
                put_file(rel, "x", 1);
                make_version(&m[i], i, i - 1, arch);
                assert_int_equal(v2_commit(st, &P, &m[i], NULL, err, sizeof err), 0);
        }
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        /* after the listing: version 1's content becomes version 6 */
        make_version(&again, 6, 5, "alice.tar.zst.a-here-00000000000000c1");
        assert_int_equal(v2_commit(st, &P, &again, NULL, err, sizeof err), 0);
        v2_prune(st, &P, &vs, &m[5], 2, "here", NULL, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        assert_true(exists("alice/alice.tar.zst.m00000006"));
        assert_true(exists("alice/alice.tar.zst.a-here-00000000000000c1")); /* version 6 names it */
        assert_false(exists("alice/alice.tar.zst.a-here-00000000000000c2")); /* no version does */
        assert_true(exists("alice/alice.tar.zst.a-here-00000000000000c3"));
        assert_false(exists("alice/alice.tar.zst.m00000002"));
        assert_int_equal(current(), 6);
        manifest_free(&again);
        for (unsigned i = 1; i <= 5; i++)
                manifest_free(&m[i]);
}

/* Two machines of one short host name (a cloned lab image, every machine "debian"; or the
 * "localhost" fallback) share a store. Before, the prune took every F.a-HOST- archive as this
 * machine's own, with no grace: an upload in progress on the clone (marked there, not here)
 * was removed, and the clone's next version named an archive that was gone. Now an archive is
 * this machine's only under its own v2_self name (install id and boot id in it). */
static void test_prune_same_host(void **state) {
        (void)state;
        struct manifest m[4];
        struct v2_state vs;
        char err[600], cmd[400], a_dir[300], b_dir[300], self_a[V2_SELF_MAX], self_b[V2_SELF_MAX],
                again[V2_SELF_MAX], clone[300], orphan[300], rel[400], id_path[400];
        struct stat sb;

        snprintf(cmd, sizeof cmd, "rm -rf '%s'/alice/*", dir);
        assert_int_equal(system(cmd), 0);
        snprintf(a_dir, sizeof a_dir, "%s/state-a", dir);
        snprintf(b_dir, sizeof b_dir, "%s/state-b", dir);
        assert_int_equal(mkdir(a_dir, 0700), 0);
        assert_int_equal(mkdir(b_dir, 0700), 0);
        assert_int_equal(v2_self(a_dir, "lab", self_a), 0);
        assert_int_equal(v2_self(b_dir, "lab", self_b), 0);
        assert_int_equal(v2_self(a_dir, "lab", again), 0);
        assert_string_equal(self_a, again); /* the install id is kept */
        assert_string_equal(self_a + 8, "-lab"); /* TAG-HOST: an older pgina's F.a-lab- is not it */
        assert_int_equal(strlen(self_a), 12);
        assert_string_not_equal(self_a, self_b);
        snprintf(id_path, sizeof id_path, "%s/install-id", a_dir);
        assert_int_equal(stat(id_path, &sb), 0);
        assert_int_equal(sb.st_size, 33);
        assert_int_equal(sb.st_mode & 07777, 0644);
        /* a long host name is cut, the tag is not */
        assert_int_equal(v2_self(a_dir, "a-very-long-host-name-of-a-lab-machine-in-room-12", again), 0);
        assert_int_equal(strlen(again), 8 + 1 + 32);
        assert_memory_equal(again, self_a, 9);
        /* a damaged install id is made again (a new tag); one that cannot be read is not */
        FILE *f = fopen(id_path, "w");
        assert_non_null(f);
        fputs("not an id\n", f);
        fclose(f);
        assert_int_equal(v2_self(a_dir, "lab", again), 0);
        assert_string_not_equal(again, self_a);
        assert_int_equal(stat(id_path, &sb), 0);
        assert_int_equal(sb.st_size, 33);
        assert_int_equal(v2_self(a_dir, "lab", self_a), 0); /* (the new one, from here on) */
        assert_string_equal(again, self_a);
        char no_dir[400];
        snprintf(no_dir, sizeof no_dir, "%s/no-such-dir", dir);
        assert_true(v2_self(no_dir, "lab", again) < 0); /* a name of this process's own */
        assert_string_equal(again + 8, "-lab");
        /* a name the manifest could not hold is refused */
        static const struct v2_profile LONG = {.dir = "alice", .filename =
                "a-file-name-of-many-bytes-that-an-admin-may-have-configured-for-some-reason-or-other-"
                "a-file-name-of-many-bytes-that-an-admin-may-have-configured-for-some-reason-or-"
                "then-some-more-and-more-and-more-and-more-and-more-and-more-x"}; /* (225 bytes: 257 with the rest) */
        char long_name[600];
        assert_int_equal(v2_archive_name(&LONG, self_a, long_name, sizeof long_name), -ENAMETOOLONG);

        for (unsigned i = 1; i <= 3; i++) {
                char arch[64];
                snprintf(arch, sizeof arch, "alice.tar.zst.a-lab-s%u", i);
                snprintf(rel, sizeof rel, "alice/%s", arch);
                put_file(rel, "x", 1);
                make_version(&m[i], i, i - 1, arch);
                assert_int_equal(v2_commit(st, &P, &m[i], NULL, err, sizeof err), 0);
        }
        /* the clone's delta, uploaded and being verified (its mark is on the clone) */
        assert_int_equal(v2_archive_name(&P, self_b, clone, sizeof clone), 0);
        snprintf(rel, sizeof rel, "alice/%s", clone);
        put_file(rel, "x", 1);
        /* this machine's own upload that died (no mark): goes at once, as before */
        assert_int_equal(v2_archive_name(&P, self_a, orphan, sizeof orphan), 0);
        snprintf(rel, sizeof rel, "alice/%s", orphan);
        put_file(rel, "x", 1);
        /* an older pgina's name on the clone (F.a-HOST-RANDOM, no tag): waits as well */
        put_file("alice/alice.tar.zst.a-lab-0123456789abcdef", "x", 1);
        /* a host whose name begins with this machine's whole name (TAG-lab-x): not ours either */
        char longer[300];
        snprintf(longer, sizeof longer, "alice/alice.tar.zst.a-%s-x-0123456789abcdef", self_a);
        put_file(longer, "x", 1);
        char marks[400];
        snprintf(marks, sizeof marks, "%s/alice", a_dir);
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune(st, &P, &vs, &m[3], 1, self_a, marks, (int64_t)time(NULL), 3600, NULL, NULL);
        v2_state_free(&vs);
        snprintf(rel, sizeof rel, "alice/%s", clone);
        assert_true(exists(rel));
        assert_true(exists("alice/alice.tar.zst.a-lab-0123456789abcdef"));
        assert_true(exists(longer));
        snprintf(rel, sizeof rel, "alice/%s", orphan);
        assert_false(exists(rel));
        assert_false(exists("alice/alice.tar.zst.m00000001")); /* the prune ran */
        /* past the grace period the clone's leftovers go too */
        assert_int_equal(v2_list(st, &P, &vs, err, sizeof err), 0);
        v2_prune(st, &P, &vs, &m[3], 1, self_a, marks, (int64_t)time(NULL) + 7200, 3600, NULL, NULL);
        v2_state_free(&vs);
        snprintf(rel, sizeof rel, "alice/%s", clone);
        assert_false(exists(rel));
        assert_false(exists("alice/alice.tar.zst.a-lab-0123456789abcdef"));
        assert_false(exists("alice/alice.tar.zst.a-lab-s1"));
        assert_true(exists("alice/alice.tar.zst.a-lab-s2"));
        assert_int_equal(current(), 3);
        for (unsigned i = 1; i <= 3; i++)
                manifest_free(&m[i]);
}

/* A store full of damaged manifests (hostile or broken): a few are skipped, a manifest listed
 * larger than any manifest may be is not even read, and past V2_DAMAGED_MAX the reader gives up
 * with an error rather than reading on. */
/* Review 3: a manifest of a later format (a newer pgina on another machine) is not damage: a
 * reader that skipped it as damaged would commit over it and prune what it names. v2_load
 * stops with an error instead. */
static void test_newer_format(void **state) {
        (void)state;
        static const struct v2_profile Q = {.dir = "newer", .filename = "newer.tar.zst"};
        struct manifest m;
        struct v2_state vs;
        char err[600];

        assert_int_equal(store_mkdirs(st, "newer"), 0);
        make_version(&m, 1, 0, "newer.tar.zst.a-here-n1");
        put_file("newer/newer.tar.zst.a-here-n1", "abc", 3);
        assert_int_equal(v2_commit(st, &Q, &m, NULL, err, sizeof err), 0);
        manifest_free(&m);
        /* format 3 as a later pgina may write it: the same checksum line at the end */
        const char *body = "pgina-profile-manifest 3\nnumber 2\nsomething new\n";
        unsigned char d[32];
        unsigned dl = 0;
        char text[256];
        int at = snprintf(text, sizeof text, "%ssha256 ", body);
        EVP_Digest(body, strlen(body), d, &dl, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
                at += snprintf(text + at, sizeof text - (size_t)at, "%02x", d[i]);
        text[at++] = '\n';
        put_file("newer/newer.tar.zst.m00000002", text, (size_t)at);
        assert_int_equal(v2_load(st, &Q, &vs, err, sizeof err), -EPROTONOSUPPORT);
        assert_non_null(strstr(err, "written by a newer pgina"));
        /* one that only says format 3 (no valid checksum line: damage, a flipped byte) is
         * skipped as damaged, as before */
        assert_int_equal(store_unlink(st, "newer/newer.tar.zst.m00000002"), 0);
        put_file("newer/newer.tar.zst.m00000002", "pgina-profile-manifest 3\nnumber 2\n", 34);
        assert_int_equal(v2_load(st, &Q, &vs, err, sizeof err), 0);
        assert_int_equal(vs.cur.number, 1);
        assert_int_equal(vs.damaged, 1);
        v2_state_free(&vs);
}

static void test_damaged_bounds(void **state) {
        (void)state;
        static const struct v2_profile Q = {.dir = "dmg", .filename = "dmg.tar.zst"};
        struct manifest m;
        struct v2_state vs;
        char err[600], rel[128], path[600];
        int fd;

        assert_int_equal(store_mkdirs(st, "dmg"), 0);
        make_version(&m, 1, 0, "dmg.tar.zst.a-here-d1");
        put_file("dmg/dmg.tar.zst.a-here-d1", "abc", 3);
        assert_int_equal(v2_commit(st, &Q, &m, NULL, err, sizeof err), 0);
        manifest_free(&m);
        /* manifest 2: a sparse 600 MiB file */
        snprintf(path, sizeof path, "%s/dmg/dmg.tar.zst.m00000002", dir);
        assert_true((fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644)) >= 0);
        assert_int_equal(ftruncate(fd, 600ll * 1024 * 1024), 0);
        close(fd);
        for (unsigned i = 3; i <= 20; i++) {
                snprintf(rel, sizeof rel, "dmg/dmg.tar.zst.m%08u", i);
                put_file(rel, "junk\n", 5);
        }
        assert_int_equal(v2_load(st, &Q, &vs, err, sizeof err), 0);
        assert_int_equal(vs.cur.number, 1);
        assert_int_equal(vs.damaged, 19);
        v2_state_free(&vs);
        assert_int_equal(v2_list(st, &Q, &vs, err, sizeof err), 0);
        v2_state_free(&vs);
        for (unsigned i = 21; i <= 60; i++) {
                snprintf(rel, sizeof rel, "dmg/dmg.tar.zst.m%08u", i);
                put_file(rel, "junk\n", 5);
        }
        assert_int_equal(v2_load(st, &Q, &vs, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "damaged manifests above the newest valid one"));
        /* the one listed too large was skipped unread: its reason says so */
        assert_int_equal(v2_list(st, &Q, &vs, err, sizeof err), 0);
        v2_state_free(&vs);
        for (unsigned i = 3; i <= 60; i++) {
                snprintf(rel, sizeof rel, "dmg/dmg.tar.zst.m%08u", i);
                assert_int_equal(store_unlink(st, rel), 0);
        }
        assert_int_equal(v2_load(st, &Q, &vs, err, sizeof err), 0);
        assert_int_equal(vs.damaged, 1);
        assert_non_null(strstr(vs.damaged_why, "is listed with 629145600 bytes"));
        v2_state_free(&vs);
        assert_int_equal(store_unlink(st, "dmg/dmg.tar.zst.m00000002"), 0);
}

static void test_version_string(void **state) {
        (void)state;
        struct manifest m;
        char v[64], id[MANIFEST_ID_LEN + 1];
        uint64_t n;

        make_version(&m, 42, 41, "alice.tar.zst.a-x");
        v2_version_string(&m, v, sizeof v);
        assert_int_equal(v2_version_parse(v, &n, id), 0);
        assert_int_equal(n, 42);
        assert_string_equal(id, m.id);
        assert_int_equal(v2_version_parse("1700000000.000000001-abcdef", &n, id), -EINVAL);
        assert_int_equal(v2_version_parse("2:0:0123", &n, id), -EINVAL);
        assert_int_equal(v2_version_parse("", &n, id), -EINVAL);
        manifest_free(&m);
}

/* A home of 300,000 paths: its manifest (over 16 MiB, past a plain pbuf) is committed and read
 * back, and kept as this machine's copy; a copy of another version is stale, a damaged one
 * refused. */
static void test_large_and_local(void **state) {
        (void)state;
        struct manifest_archive a = {.size = 3};
        struct manifest m, back;
        char err[600], path[PATH_MAX], other[MANIFEST_ID_LEN + 1];
        const char *last = "Documents/some folder/file number 0299999.txt";
        uint64_t size = 0;
        struct scan s;

        snprintf(a.name, sizeof a.name, "alice.tar.zst.a-big");
        memset(a.sha256, 'b', 64);
        scan_init(&s);
        for (unsigned i = 0; i < 300000; i++) {
                snprintf(path, sizeof path, "Documents/some folder/file number %07u.txt", i);
                struct scan_entry e = {.flag = '+', .type = 'f', .mode = 0644, .size = i,
                                       .mtime_s = 1700000000 + (int64_t)i, .mtime_ns = 123456789,
                                       .path = strdup(path)};
                assert_int_equal(scan_add(&s, &e), 0);
        }
        assert_int_equal(scan_sort(&s), 0);
        assert_int_equal(manifest_from_scan(&m, NULL, &s, &a), 0);
        scan_free(&s);
        m.number = 50;
        manifest_new_id(m.id);
        snprintf(m.user, sizeof m.user, "alice");
        snprintf(m.host, sizeof m.host, "here");
        m.time = 1;
        assert_int_equal(v2_commit(st, &P, &m, &size, err, sizeof err), 0);
        assert_true(size > PBUF_MAX);
        assert_int_equal(v2_read_manifest(st, &P, 50, &back, err, sizeof err), 0);
        assert_int_equal(back.n, 300000);
        assert_int_equal(manifest_find(&back, last)->size, 299999);
        manifest_free(&back);

        assert_int_equal(v2_local_save(dir, "alice", &m), 0);
        snprintf(path, sizeof path, "%s/alice.manifest", dir);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);
        assert_int_equal(v2_local_load(dir, "alice", 50, m.id, &back), 0);
        assert_int_equal(back.n, m.n);
        assert_int_equal(manifest_find(&back, last)->mtime_ns, 123456789);
        manifest_free(&back);
        assert_int_equal(v2_local_load(dir, "alice", 49, m.id, &back), -ESTALE);
        manifest_new_id(other);
        assert_int_equal(v2_local_load(dir, "alice", 50, other, &back), -ESTALE);
        /* one byte changed: the checksum fails */
        int fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, sb.st_size / 2), 1);
        close(fd);
        assert_int_equal(v2_local_load(dir, "alice", 50, m.id, &back), -EBADMSG);
        v2_local_remove(dir, "alice");
        assert_int_equal(v2_local_load(dir, "alice", 50, m.id, &back), -ENOENT);
        manifest_free(&m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crash_points),
                cmocka_unit_test(test_prune),
                cmocka_unit_test(test_version_string),
                cmocka_unit_test(test_large_and_local),
                cmocka_unit_test(test_damaged_bounds),
                cmocka_unit_test(test_newer_format),
                cmocka_unit_test(test_prune_after_listing),
                cmocka_unit_test(test_prune_same_host),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
