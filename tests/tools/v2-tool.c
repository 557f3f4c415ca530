/* v2-tool: what another machine does to a format-2 profile in a file:// store, for the
 * integration tests.
 *
 *   v2-tool show DIR FILENAME
 *       the current version: "version N id ID host HOST archives K entries E", then one line
 *       per entry "TYPE ARCHIVE PATH"
 *   v2-tool commit DIR FILENAME HOST PATH=SOURCE...
 *       another machine's logoff: an archive holding the files (SOURCE's bytes at PATH, 0644,
 *       mtime now; PATH's directories must be in the current version), then the next manifest,
 *       created exclusively; prints the new version number. HOST is the manifest's host and
 *       the machine's name in the archive's, unless V2_SELF names it (v2_self's on a machine:
 *       TAG-HOST). V2_PAUSE=1: "staged ARCHIVE" once the archive is in the store, then the
 *       commit after a line on stdin
 *   v2-tool delete DIR FILENAME HOST PATH...
 *       a version without those paths (no archive)
 *   v2-tool hold DIR FILENAME
 *       creates the next manifest slot with half a manifest (a writer that died mid-write)
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pgsmb-manifest.h"
#include "pgsmb-store.h"
#include "pgsmb-v2.h"

static int die(const char *what) {
        fprintf(stderr, "v2-tool: %s\n", what);
        return 1;
}

static struct store *open_store(const char *dir) {
        char url[4200], err[STORE_ERROR_MAX];
        struct store *st = NULL;

        snprintf(url, sizeof url, "file://%s", dir);
        if (store_open(url, NULL, 10, &st, err, sizeof err) < 0) {
                fprintf(stderr, "v2-tool: %s\n", err);
                exit(1);
        }
        return st;
}

static void hex(const unsigned char *d, char out[65]) {
        for (int i = 0; i < 32; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

/* A tar (pax) + zstd archive of the given files, written to path; its size and sha256. */
static int write_archive(const char *path, char **pairs, int n, uint64_t *size, char sha[65],
                         struct manifest_entry *ents) {
        struct archive *a = archive_write_new();
        /* V2_MTIME: the files' mtime (a change that keeps it), else now; one origin for all, as
         * one logoff's archiving gives */
        const char *fixed = getenv("V2_MTIME");
        int64_t mtime = fixed ? strtoll(fixed, NULL, 10) : (int64_t)time(NULL);
        uint64_t origin = manifest_new_origin();

        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_zstd(a);
        if (archive_write_open_filename(a, path) != ARCHIVE_OK)
                return die(archive_error_string(a));
        for (int i = 0; i < n; i++) {
                char *eq = strchr(pairs[i], '=');
                char buf[65536];
                struct archive_entry *e = archive_entry_new();
                struct stat st;
                int fd;
                if (!eq)
                        return die("PATH=SOURCE expected");
                *eq = 0;
                if ((fd = open(eq + 1, O_RDONLY)) < 0 || fstat(fd, &st) < 0)
                        return die("cannot read a source file");
                archive_entry_set_pathname(e, pairs[i]);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, st.st_size);
                archive_entry_set_mtime(e, mtime, 0);
                archive_write_header(a, e);
                for (ssize_t k; (k = read(fd, buf, sizeof buf)) > 0;)
                        archive_write_data(a, buf, (size_t)k);
                close(fd);
                archive_entry_free(e);
                ents[i] = (struct manifest_entry){.path = pairs[i], .type = 'f', .mode = 0644,
                                                  .size = (uint64_t)st.st_size, .mtime_s = mtime,
                                                  .origin = origin};
        }
        archive_write_close(a);
        archive_write_free(a);

        unsigned char d[32];
        unsigned char buf[65536];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int fd = open(path, O_RDONLY);
        struct stat st;
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        for (ssize_t k; (k = read(fd, buf, sizeof buf)) > 0;)
                EVP_DigestUpdate(md, buf, (size_t)k);
        EVP_DigestFinal_ex(md, d, NULL);
        EVP_MD_CTX_free(md);
        fstat(fd, &st);
        close(fd);
        *size = (uint64_t)st.st_size;
        hex(d, sha);
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const struct manifest_entry *)a)->path, ((const struct manifest_entry *)b)->path);
}

/* Freed at exit (the sanitizers' leak check runs this tool too). */
static struct v2_state vs;
static struct manifest next;
static struct store *st;
static struct manifest_entry *ents;
static void cleanup(void) {
        v2_state_free(&vs);
        manifest_free(&next);
        free(ents);
        if (st)
                store_close(st);
}

int main(int argc, char **argv) {
        struct v2_profile p;
        char err[1024];

        atexit(cleanup);

        if (argc < 4)
                return die("usage: v2-tool show|commit|delete|hold DIR FILENAME ...");
        p = (struct v2_profile){.dir = "", .filename = argv[3]};
        st = open_store(argv[2]);
        if (v2_load(st, &p, &vs, err, sizeof err) < 0)
                return die(err);
        if (strcmp(argv[1], "show") == 0) {
                if (!vs.cur.number)
                        return die("no version");
                printf("version %" PRIu64 " id %s host %s archives %zu entries %zu parent %" PRIu64 "\n",
                       vs.cur.number, vs.cur.id, vs.cur.host, vs.cur.narch, vs.cur.n, vs.cur.parent);
                for (size_t i = 0; i < vs.cur.n; i++)
                        printf("%c %s %s\n", vs.cur.v[i].type, vs.cur.arch[vs.cur.v[i].archive].name, vs.cur.v[i].path);
                return 0;
        }
        if (strcmp(argv[1], "hold") == 0) {
                char name[300], rel[1200];
                struct store_file *f;
                manifest_file_name(p.filename, vs.top + 1, name, sizeof name);
                v2_rel(&p, name, rel, sizeof rel);
                if (store_open_write(st, rel, &f) < 0)
                        return die(store_error(st));
                store_write(f, MANIFEST_MAGIC "\nnumber ", strlen(MANIFEST_MAGIC) + 8);
                store_close_file(f);
                printf("%" PRIu64 "\n", vs.top + 1);
                return 0;
        }
        if (!vs.cur.number || argc < 6)
                return die("no version to build on, or nothing to do");
        manifest_copy(&next, &vs.cur);
        if (strcmp(argv[1], "commit") == 0) {
                int n = argc - 5;
                ents = calloc((size_t)n, sizeof *ents);
                struct manifest_archive a = {0};
                char rel[1200], path[4400];
                const char *self = getenv("V2_SELF");
                v2_archive_name(&p, self ? self : argv[4], a.name, sizeof a.name);
                v2_rel(&p, a.name, rel, sizeof rel);
                snprintf(path, sizeof path, "%s/%s", argv[2], rel);
                if (write_archive(path, argv + 5, n, &a.size, a.sha256, ents))
                        return 1;
                /* V2_PAUSE: a commit that takes its time (a machine verifying its upload): say
                 * "staged NAME" and commit once a line comes on stdin */
                if (getenv("V2_PAUSE")) {
                        char line[16];
                        printf("staged %s\n", a.name);
                        fflush(stdout);
                        if (!fgets(line, sizeof line, stdin))
                                return die("no go on stdin");
                }
                next.arch = realloc(next.arch, (next.narch + 1) * sizeof *next.arch);
                next.arch[next.narch] = a;
                for (int i = 0; i < n; i++) {
                        ents[i].archive = (uint32_t)next.narch;
                        struct manifest_entry *old = (struct manifest_entry *)manifest_find(&next, ents[i].path);
                        if (old) {
                                free(old->path);
                                *old = ents[i];
                                old->path = strdup(ents[i].path);
                        } else {
                                next.v = realloc(next.v, (next.n + 1) * sizeof *next.v);
                                next.v[next.n] = ents[i];
                                next.v[next.n++].path = strdup(ents[i].path);
                                qsort(next.v, next.n, sizeof *next.v, entry_cmp);
                        }
                }
                next.narch++;
        } else if (strcmp(argv[1], "delete") == 0) {
                for (int i = 5; i < argc; i++) {
                        struct manifest_entry *old = (struct manifest_entry *)manifest_find(&next, argv[i]);
                        if (!old)
                                return die("no such path");
                        free(old->path);
                        size_t at = (size_t)(old - next.v);
                        memmove(old, old + 1, (next.n - at - 1) * sizeof *old);
                        next.n--;
                }
        } else
                return die("unknown command");
        next.parent = vs.cur.number;
        next.number = (vs.top > vs.cur.number ? vs.top : vs.cur.number) + 1;
        manifest_new_id(next.id);
        snprintf(next.host, sizeof next.host, "%s", argv[4]);
        next.time = (int64_t)time(NULL);
        if (v2_commit(st, &p, &next, NULL, err, sizeof err) < 0)
                return die(err[0] ? err : "the slot is taken");
        printf("%" PRIu64 "\n", next.number);
        return 0;
}
