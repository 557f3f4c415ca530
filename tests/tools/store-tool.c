/* store-tool: a small command line over pgSMB's profile store (pgsmb-store.h), for tests and
 * for poking at a share by hand. The password comes only from a file descriptor.
 *   store-tool URL [--user U] [--domain D] [--password-fd N] [--timeout S] COMMAND ARGS
 *   put REL <stdin | get REL >stdout | list [REL] | stat REL | mkdirs REL |
 *   rename FROM TO [--replace] | copy FROM TO | rm REL |
 *   stat-twice REL (stat, wait for a line on stdin, stat again on the same store) |
 *   put-reread REL <stdin >stdout (put, then read it back on the same handle: store_reread)
 * list and mkdirs open the store with store_open_listing of their folder, as pgSMB does.
 * Exit status: 0 done, 1 the store failed (its message on stderr), 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgsmb-store.h"
#include "secret.h"
#include "util.h"

#define CHUNK (1u << 20)

static int usage(void) {
        fprintf(stderr,
                "usage: store-tool URL [--user U] [--domain D] [--password-fd N] [--timeout S] "
                "COMMAND ARGS\n"
                "  put REL <stdin | get REL >stdout | list [REL] | stat REL | mkdirs REL\n"
                "  rename FROM TO [--replace] | copy FROM TO | rm REL | stat-twice REL\n"
                "  put-reread REL <stdin >stdout\n");
        return 2;
}

/* The password: everything on fd up to EOF or the first newline. */
static struct secret *read_password(int fd) {
        char buf[SECRET_MAX + 2];
        size_t len = 0;
        struct secret *s;

        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "store-tool: reading the password from fd %d: %m\n", fd);
                        explicit_bzero(buf, sizeof buf);
                        return NULL;
                }
                if (n == 0 || memchr(buf + len, '\n', (size_t)n)) {
                        len += (size_t)n;
                        break;
                }
                len += (size_t)n;
                if (len == sizeof buf - 1)
                        break;
        }
        buf[len] = 0;
        buf[strcspn(buf, "\n")] = 0;
        s = secret_from_cstr(buf);
        explicit_bzero(buf, sizeof buf);
        if (!s)
                fprintf(stderr, "store-tool: password too long or out of memory\n");
        return s;
}

static int fail(struct store *s) {
        fprintf(stderr, "store-tool: %s\n", store_error(s));
        return 1;
}

static int cmd_put(struct store *s, const char *rel, bool reread) {
        _cleanup_free_ char *buf = malloc(CHUNK);
        struct store_file *f = NULL;

        if (!buf)
                return 1;
        if (store_open_write(s, rel, &f) < 0)
                return fail(s);
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "store-tool: reading stdin: %m\n");
                        store_close_file(f);
                        return 1;
                }
                if (n == 0)
                        break;
                if (store_write(f, buf, (size_t)n) < 0) {
                        fail(s);
                        store_close_file(f);
                        return 1;
                }
        }
        if (reread) {
                ssize_t n;
                /* as the commit reads: to one byte past what was written */
                if (store_reread(f) < 0) {
                        fail(s);
                        store_close_file(f);
                        return 1;
                }
                while ((n = store_read(f, buf, CHUNK)) > 0)
                        if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
                                fprintf(stderr, "store-tool: writing stdout: %m\n");
                                store_close_file(f);
                                return 1;
                        }
                if (n < 0) {
                        fail(s);
                        store_close_file(f);
                        return 1;
                }
        }
        return store_close_file(f) < 0 ? fail(s) : 0;
}

static int cmd_get(struct store *s, const char *rel) {
        _cleanup_free_ char *buf = malloc(CHUNK);
        struct store_file *f = NULL;
        int rc = 0;

        if (!buf)
                return 1;
        if (store_open_read(s, rel, &f) < 0)
                return fail(s);
        for (;;) {
                ssize_t n = store_read(f, buf, CHUNK);

                if (n < 0) {
                        rc = fail(s);
                        break;
                }
                if (n == 0)
                        break;
                if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
                        fprintf(stderr, "store-tool: writing stdout: %m\n");
                        rc = 1;
                        break;
                }
        }
        store_close_file(f);
        return rc;
}

static int cmd_list(struct store *s, const char *rel) {
        struct store_entry *v;
        size_t n;

        if (store_list(s, rel, &v, &n) < 0)
                return fail(s);
        for (size_t i = 0; i < n; i++)
                printf("%s\t%s\t%" PRIu64 "\t%" PRId64 "\n", v[i].is_dir ? "dir" : "file",
                       v[i].name, v[i].size, v[i].mtime);
        store_entries_free(v, n);
        return 0;
}

static int cmd_stat(struct store *s, const char *rel) {
        struct store_stat st;

        if (store_stat(s, rel, &st) < 0)
                return fail(s);
        printf("type=%s size=%" PRIu64 " mtime=%" PRId64 "\n", st.is_dir ? "dir" : "file", st.size,
               st.mtime);
        return 0;
}

/* The same store used again after a pause: the test breaks the connection in between. */
static int cmd_stat_twice(struct store *s, const char *rel) {
        char line[16];

        if (cmd_stat(s, rel) != 0)
                return 1;
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
                return 2;
        return cmd_stat(s, rel);
}

static int run(struct store *s, int argc, char **argv) {
        const char *cmd = argv[0];

        if (streq(cmd, "put") && argc == 2)
                return cmd_put(s, argv[1], false);
        if (streq(cmd, "put-reread") && argc == 2)
                return cmd_put(s, argv[1], true);
        if (streq(cmd, "get") && argc == 2)
                return cmd_get(s, argv[1]);
        if (streq(cmd, "list") && argc <= 2)
                return cmd_list(s, argc == 2 && !streq(argv[1], ".") ? argv[1] : "");
        if (streq(cmd, "stat") && argc == 2)
                return cmd_stat(s, streq(argv[1], ".") ? "" : argv[1]);
        if (streq(cmd, "mkdirs") && argc == 2)
                return store_mkdirs(s, argv[1]) < 0 ? fail(s) : 0;
        if (streq(cmd, "rename") && (argc == 3 || (argc == 4 && streq(argv[3], "--replace"))))
                return store_rename(s, argv[1], argv[2], argc == 4) < 0 ? fail(s) : 0;
        if (streq(cmd, "copy") && argc == 3)
                return store_copy(s, argv[1], argv[2]) < 0 ? fail(s) : 0;
        if (streq(cmd, "stat-twice") && argc == 2)
                return cmd_stat_twice(s, argv[1]);
        if (streq(cmd, "rm") && argc == 2)
                return store_unlink(s, argv[1]) < 0 ? fail(s) : 0;
        return usage();
}

struct options {
        struct store_creds creds;
        struct secret *password;
        unsigned timeout_s;
};

/* getopt_long up to the first non-option ("+"), so "rename A B --replace" keeps its flag.
 * Returns 0, or the exit status on an error. */
static int parse_options(int argc, char **argv, struct options *o) {
        static const struct option opts[] = {
                { "user", required_argument, NULL, 'u' },
                { "domain", required_argument, NULL, 'd' },
                { "password-fd", required_argument, NULL, 'p' },
                { "timeout", required_argument, NULL, 't' },
                {},
        };
        char *end;
        long v;
        int c;

        while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (c) {
                case 'u':
                        o->creds.user = optarg;
                        break;
                case 'd':
                        o->creds.domain = optarg;
                        break;
                case 'p':
                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || v < 0 || v > 1024)
                                return usage();
                        secret_freep(&o->password);
                        o->password = read_password((int)v);
                        if (!o->password)
                                return 1;
                        o->creds.password = o->password->data;
                        break;
                case 't':
                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || v <= 0 || v > 3600)
                                return usage();
                        o->timeout_s = (unsigned)v;
                        break;
                default:
                        return usage();
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        struct options o = { .timeout_s = 30 };
        struct store *s = NULL;
        const char *url;
        char why[STORE_ERROR_MAX];
        int rc;

        /* options may stand before or after the URL, never after the command */
        rc = parse_options(argc, argv, &o);
        if (rc == 0 && optind >= argc)
                rc = usage();
        if (rc != 0)
                goto out;
        url = argv[optind++];
        rc = parse_options(argc, argv, &o);
        if (rc == 0 && optind >= argc)
                rc = usage();
        if (rc != 0)
                goto out;
        /* list and mkdirs connect as pgSMB does (store_open_listing: the folder listed at once) */
        const char *cmd = argv[optind], *first = optind + 1 < argc ? argv[optind + 1] : "";
        if (streq(cmd, "list") || streq(cmd, "mkdirs"))
                first = streq(first, ".") ? "" : first;
        else
                first = NULL;
        if (store_open_listing(url, &o.creds, o.timeout_s, first, &s, why, sizeof why) < 0) {
                fprintf(stderr, "store-tool: %s\n", why);
                rc = 1;
                goto out;
        }
        rc = run(s, argc - optind, argv + optind);
        store_close(s);
out:
        secret_freep(&o.password);
        return rc;
}
