/* pgSMB store format 2: the scan and manifest formats, the next version from a scan, diffs,
 * rebases of two machines' versions, want lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pgsmb-manifest.h"
#include "pgsmb-scan.h"

static struct scan_entry se(char flag, char type, const char *path, uint64_t size, int64_t mtime) {
        return (struct scan_entry){.flag = flag, .type = type, .mode = type == 'd' ? 0755 : 0644, .ino = 1000 + size,
                                   .size = size, .mtime_s = mtime, .mtime_ns = 5, .ctime_s = mtime, .ctime_ns = 7,
                                   .path = strdup(path)};
}

static void scan_of(struct scan *s, const struct scan_entry *v, size_t n) {
        scan_init(s);
        for (size_t i = 0; i < n; i++) {
                struct scan_entry e = v[i];
                e.path = strdup(v[i].path);
                assert_int_equal(scan_add(s, &e), 0);
        }
        assert_int_equal(scan_sort(s), 0);
}

static void free_entries(struct scan_entry *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].path);
}

static struct manifest_archive arch(const char *name, uint64_t size) {
        struct manifest_archive a = {.size = size};
        snprintf(a.name, sizeof a.name, "%s", name);
        memset(a.sha256, 'a', 64);
        a.sha256[64] = 0;
        return a;
}

static void header(struct manifest *m, uint64_t number, uint64_t parent) {
        m->number = number;
        m->parent = parent;
        manifest_new_id(m->id);
        snprintf(m->user, sizeof m->user, "alice");
        snprintf(m->host, sizeof m->host, "lab 1");
        m->time = 1764770000;
}

/* Base: a dir, two files, a link. */
static void make_base(struct manifest *m) {
        struct scan_entry v[] = {se('+', 'd', "Documents", 0, 10), se('+', 'f', "Documents/a.txt", 3, 11),
                                 se('+', 'f', "b b%.txt", 4, 12), se('+', 'l', "link", 8, 13)};
        struct scan s;
        struct manifest_archive a = arch("alice.tar.zst.a-base", 100);

        scan_of(&s, v, 4);
        assert_int_equal(manifest_from_scan(m, NULL, &s, &a), 0);
        header(m, 1, 0);
        scan_free(&s);
        free_entries(v, 4);
}

static void test_escape(void **state) {
        (void)state;
        char out[64], back[64];

        assert_int_equal(pgsmb_path_escape("a b%\n\x7f\xc3\xa9", out, sizeof out), 0);
        assert_string_equal(out, "a%20b%25%0A%7F\xc3\xa9");
        assert_int_equal(pgsmb_path_unescape(out, strlen(out), back, sizeof back), 0);
        assert_string_equal(back, "a b%\n\x7f\xc3\xa9");
        assert_int_equal(pgsmb_path_unescape("a b", 3, back, sizeof back), -EBADMSG); /* raw space */
        assert_int_equal(pgsmb_path_unescape("a%41", 4, back, sizeof back), -EBADMSG); /* 'A' needs none */
        assert_int_equal(pgsmb_path_unescape("a%00", 4, back, sizeof back), -EBADMSG);
        assert_int_equal(pgsmb_path_unescape("a%2", 3, back, sizeof back), -EBADMSG);
        assert_int_equal(pgsmb_path_escape("abcdef", out, 6), -ENAMETOOLONG);
        assert_true(pgsmb_path_valid("a/b.c"));
        assert_false(pgsmb_path_valid("/a"));
        assert_false(pgsmb_path_valid("a/../b"));
        assert_false(pgsmb_path_valid("a//b"));
        assert_false(pgsmb_path_valid("a/"));
        assert_false(pgsmb_path_valid("./a"));
        assert_false(pgsmb_path_valid(""));
}

static void test_scan_roundtrip_and_hostile(void **state) {
        (void)state;
        struct scan_entry v[] = {se('+', 'f', "x y", 5, -3), se('=', 'd', "d", 0, 9)};
        struct scan s, t;
        struct pbuf b;
        size_t line;

        scan_of(&s, v, 2);
        pbuf_init(&b);
        assert_int_equal(scan_format_all(&s, &b), 0);
        assert_int_equal(scan_parse(&t, (const char *)b.data, b.len, &line), 0);
        assert_int_equal(t.n, 2);
        assert_string_equal(t.v[0].path, "d");
        assert_string_equal(t.v[1].path, "x y");
        assert_int_equal(t.v[1].mtime_s, -3);
        assert_non_null(scan_find(&t, "x y"));
        assert_null(scan_find(&t, "x"));
        scan_free(&t);

        static const char *const bad[] = {
                "+ f 644 1 1 1.000000000 1.000000000 ../etc\n",
                "+ f 644 1 1 1.000000000 1.000000000 /etc/passwd\n",
                "+ f 644 1 1 1.000000000 1.000000000 a b\n",
                "+ x 644 1 1 1.000000000 1.000000000 a\n",
                "? f 644 1 1 1.000000000 1.000000000 a\n",
                "+ f 644 1 1 1.0 1.000000000 a\n",
                "+ f 17777 1 1 1.000000000 1.000000000 a\n",
                "+ f 644 1 1 1.000000000 1.000000000 a",
                "+ f 644 1 1 1.000000000 1.000000000 a\n+ f 644 1 1 1.000000000 1.000000000 a\n",
                "+  f 644 1 1 1.000000000 1.000000000 a\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                assert_int_equal(scan_parse(&t, bad[i], strlen(bad[i]), &line), -EBADMSG);
        /* the line number of the bad one */
        const char *two = "+ f 644 1 1 1.000000000 1.000000000 a\n+ f 644 1 1 1.000000000 1.000000000 ..\n";
        assert_int_equal(scan_parse(&t, two, strlen(two), &line), -EBADMSG);
        assert_int_equal(line, 2);
        pbuf_free(&b);
        scan_free(&s);
        free_entries(v, 2);
}

static void test_pathlist(void **state) {
        (void)state;
        struct pbuf b;
        char **v;
        size_t n, line;

        pbuf_init(&b);
        assert_int_equal(pathlist_add(&b, "z"), 0);
        assert_int_equal(pathlist_add(&b, "a b"), 0);
        assert_int_equal(pathlist_parse((const char *)b.data, b.len, &v, &n, &line), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0], "a b");
        assert_true(pathlist_has(v, n, "z"));
        assert_false(pathlist_has(v, n, "y"));
        pathlist_free(v, n);
        assert_int_equal(pathlist_parse("a\n../b\n", 7, &v, &n, &line), -EBADMSG);
        assert_int_equal(line, 2);
        assert_int_equal(pathlist_parse("a\na\n", 4, &v, &n, &line), -EBADMSG);
        pbuf_free(&b);
}

static void test_manifest_roundtrip(void **state) {
        (void)state;
        struct manifest m, p;
        struct pbuf b;
        char err[256];

        make_base(&m);
        assert_int_equal(m.narch, 1);
        assert_int_equal(m.n, 4);
        assert_int_equal(manifest_bytes(&m), 7);
        pbuf_init(&b);
        assert_int_equal(manifest_format(&m, &b), 0);
        assert_int_equal(manifest_parse(&p, (const char *)b.data, b.len, err, sizeof err), 0);
        assert_int_equal(p.number, 1);
        assert_string_equal(p.id, m.id);
        assert_string_equal(p.host, "lab 1");
        assert_int_equal(p.n, 4);
        assert_string_equal(p.v[1].path, "Documents/a.txt");
        assert_string_equal(p.arch[0].name, "alice.tar.zst.a-base");
        assert_non_null(manifest_find(&p, "b b%.txt"));
        manifest_free(&p);

        /* Every cut (a manifest half-written when its writer died) and every flipped byte is
         * refused: a reader never takes a damaged manifest for a version. */
        for (size_t cut = 0; cut < b.len; cut++)
                assert_int_equal(manifest_parse(&p, (const char *)b.data, cut, err, sizeof err), -EBADMSG);
        for (size_t i = 0; i < b.len; i++) {
                b.data[i] ^= 0x01;
                assert_int_equal(manifest_parse(&p, (const char *)b.data, b.len, err, sizeof err), -EBADMSG);
                b.data[i] ^= 0x01;
        }
        pbuf_free(&b);
        manifest_free(&m);
}

static void sha_for_test(const char *s, char out[65]) {
        unsigned char d[32];
        unsigned dl;
        EVP_Digest(s, strlen(s), d, &dl, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

/* Rewrite a manifest's text with `edit` applied, its checksum made valid again: what a hostile
 * store could serve. */
static int parse_edited(const char *from, const char *to, char *err, size_t errlen) {
        struct manifest m, p;
        struct pbuf b;
        char *text, *at, sum_line[80];
        int k;

        make_base(&m);
        pbuf_init(&b);
        assert_int_equal(manifest_format(&m, &b), 0);
        text = strndup((const char *)b.data, b.len);
        *strstr(text, "sha256 ") = 0;
        at = strstr(text, from);
        assert_non_null(at);
        size_t n = strlen(text) - strlen(from) + strlen(to) + 100;
        char *out = malloc(n);
        snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
        /* a valid checksum for the edited text */
        char hex[65];
        sha_for_test(out, hex);
        snprintf(sum_line, sizeof sum_line, "sha256 %s\n", hex);
        char *full = malloc(strlen(out) + strlen(sum_line) + 1);
        strcpy(full, out);
        strcat(full, sum_line);
        k = manifest_parse(&p, full, strlen(full), err, errlen);
        manifest_free(&p);
        free(full);
        free(out);
        free(text);
        pbuf_free(&b);
        manifest_free(&m);
        return k;
}

static void test_manifest_hostile(void **state) {
        (void)state;
        char err[256];

        assert_int_equal(parse_edited("Documents/a.txt", "../a.txt", err, sizeof err), -EBADMSG);
        assert_string_equal(err, "line 10: invalid entry line");
        assert_int_equal(parse_edited("e 0 f 644 3", "e 7 f 644 3", err, sizeof err), -EBADMSG); /* no archive 7 */
        assert_int_equal(parse_edited("Documents/a.txt", "Documents/a%2Fb", err, sizeof err), -EBADMSG);
        assert_int_equal(parse_edited("link", "Documents", err, sizeof err), -EBADMSG); /* out of order */
        assert_int_equal(parse_edited("parent 0", "parent 1", err, sizeof err), -EBADMSG);
        assert_int_equal(parse_edited("a 0 alice.tar.zst.a-base", "a 0 ../x", err, sizeof err), -EBADMSG);
        assert_int_equal(parse_edited("a 0 alice.tar.zst.a-base", "a 0 .hidden", err, sizeof err), -EBADMSG);
        assert_int_equal(parse_edited("number 1", "number 01", err, sizeof err), -EBADMSG);
        assert_int_equal(parse_edited("e 0 d 755", "e 0 c 755", err, sizeof err), -EBADMSG);
        assert_int_equal(parse_edited("pgina-profile-manifest 2", "pgina-profile-manifest 1", err, sizeof err),
                         -EBADMSG);
        assert_int_equal(parse_edited("pgina-profile-manifest 2", "pgina-profile-manifest x", err, sizeof err),
                         -EBADMSG);
        /* a later format is not damage (review 3): its readers stop rather than commit over it */
        assert_int_equal(parse_edited("pgina-profile-manifest 2", "pgina-profile-manifest 3", err, sizeof err),
                         -EPROTONOSUPPORT);
        assert_string_equal(err, "line 1: a manifest of format 3, written by a newer pgina (this one reads format 2)");
        /* and an edit that keeps it valid is taken (the checks are not blanket refusals) */
        assert_int_equal(parse_edited("Documents/a.txt", "Documents/b.txt", err, sizeof err), 0);
}

static void test_from_scan_and_diff(void **state) {
        (void)state;
        struct manifest base, next, bad;
        /* a.txt changed, b deleted, c new, the rest unchanged */
        struct scan_entry v[] = {se('=', 'd', "Documents", 0, 10), se('+', 'f', "Documents/a.txt", 30, 21),
                                 se('+', 'f', "c", 1, 22), se('=', 'l', "link", 8, 13)};
        struct manifest_archive d1 = arch("alice.tar.zst.a-d1", 10);
        struct scan s;
        char **ch, **del;
        size_t nch, ndel;

        make_base(&base);
        scan_of(&s, v, 4);
        assert_int_equal(manifest_from_scan(&next, &base, &s, &d1), 0);
        assert_int_equal(next.narch, 2);
        assert_int_equal(manifest_find(&next, "Documents/a.txt")->archive, 1);
        assert_int_equal(manifest_find(&next, "link")->archive, 0);
        assert_null(manifest_find(&next, "b b%.txt"));
        assert_int_equal(manifest_diff(&base, &next, &ch, &nch, &del, &ndel), 0);
        assert_int_equal(nch, 2);
        assert_string_equal(ch[0], "Documents/a.txt");
        assert_string_equal(ch[1], "c");
        assert_int_equal(ndel, 1);
        assert_string_equal(del[0], "b b%.txt");
        pathlist_free(ch, nch);
        pathlist_free(del, ndel);

        /* want lists: what each archive provides */
        struct pbuf b;
        size_t count;
        pbuf_init(&b);
        assert_int_equal(manifest_want(&next, 0, NULL, 0, &b, &count), 0);
        assert_int_equal(count, 2);
        assert_memory_equal(b.data, "Documents\nlink\n", b.len);
        pbuf_reset(&b);
        assert_int_equal(manifest_want(&next, 1, NULL, 0, &b, &count), 0);
        assert_int_equal(count, 2);
        pbuf_free(&b);

        /* a '=' the old manifest does not have: the record and the store disagree */
        scan_free(&s);
        struct scan_entry w[] = {se('=', 'f', "nowhere", 1, 1)};
        scan_of(&s, w, 1);
        assert_int_equal(manifest_from_scan(&bad, &base, &s, &d1), -ESTALE);
        assert_int_equal(manifest_from_scan(&bad, NULL, &s, &d1), -ESTALE);
        free_entries(w, 1);

        /* everything replaced: the base leaves the chain */
        scan_free(&s);
        struct scan_entry all[] = {se('+', 'f', "only", 1, 1)};
        scan_of(&s, all, 1);
        assert_int_equal(manifest_from_scan(&bad, &base, &s, &d1), 0);
        assert_int_equal(bad.narch, 1);
        assert_string_equal(bad.arch[0].name, "alice.tar.zst.a-d1");
        manifest_free(&bad);
        free_entries(all, 1);

        scan_free(&s);
        free_entries(v, 4);
        manifest_free(&next);
        manifest_free(&base);
}

/* Review 2 finding 4: another machine's change that keeps a file's size and mtime (touch -r, a
 * tag editor) was invisible to manifest_diff, so a catch-up left the old content here. Each
 * archiving gives its entries a new origin; a compaction or merge keeps it. */
static void test_origin(void **state) {
        (void)state;
        struct manifest base, next, copy, p;
        struct scan_entry v[] = {se('=', 'd', "Documents", 0, 10), se('+', 'f', "Documents/a.txt", 3, 11),
                                 se('=', 'f', "b b%.txt", 4, 12), se('=', 'l', "link", 8, 13)};
        struct manifest_archive d1 = arch("alice.tar.zst.a-d1", 10);
        struct scan s;
        struct pbuf b;
        char **ch, **del, err[256];
        size_t nch, ndel;

        make_base(&base);
        assert_true(base.v[1].origin != 0);
        assert_int_equal(base.v[1].origin, base.v[0].origin); /* one archiving, one origin */
        /* Documents/a.txt archived again with the same size and mtime: a change all the same */
        scan_of(&s, v, 4);
        assert_int_equal(manifest_from_scan(&next, &base, &s, &d1), 0);
        header(&next, 2, 1);
        assert_true(manifest_find(&next, "Documents/a.txt")->origin != base.v[1].origin);
        assert_int_equal(manifest_find(&next, "link")->origin, manifest_find(&base, "link")->origin);
        assert_int_equal(manifest_diff(&base, &next, &ch, &nch, &del, &ndel), 0);
        assert_int_equal(nch, 1);
        assert_string_equal(ch[0], "Documents/a.txt");
        assert_int_equal(ndel, 0);
        pathlist_free(ch, nch);
        pathlist_free(del, ndel);
        /* a compaction's copy (every entry in one new base, origins kept): no change */
        assert_int_equal(manifest_copy(&copy, &next), 0);
        for (size_t i = 0; i < copy.n; i++)
                copy.v[i].archive = 0;
        copy.narch = 1;
        assert_int_equal(manifest_diff(&next, &copy, &ch, &nch, &del, &ndel), 0);
        assert_int_equal(nch + ndel, 0);
        /* it survives the text, and a manifest of before origins (7 fields) reads as unknown:
         * size and mtime decide, as they did */
        pbuf_init(&b);
        assert_int_equal(manifest_format(&next, &b), 0);
        assert_int_equal(manifest_parse(&p, (const char *)b.data, b.len, err, sizeof err), 0);
        assert_int_equal(manifest_find(&p, "Documents/a.txt")->origin, manifest_find(&next, "Documents/a.txt")->origin);
        manifest_free(&p);
        const char *old = "pgina-profile-manifest 2\nnumber 1\nparent 0\nid 0123456789abcdef0123456789abcdef\n"
                          "user alice\nhost lab\ntime 1\na 0 alice.tar.zst.a-base 100 "
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                          "e 0 d 755 0 10.000000005 Documents\ne 0 f 644 3 11.000000005 Documents/a.txt\n";
        char text[1024], hex[65];
        sha_for_test(old, hex);
        snprintf(text, sizeof text, "%ssha256 %s\n", old, hex);
        assert_int_equal(manifest_parse(&p, text, strlen(text), err, sizeof err), 0);
        assert_int_equal(manifest_find(&p, "Documents/a.txt")->origin, 0);
        assert_int_equal(manifest_diff(&p, &next, &ch, &nch, &del, &ndel), 0);
        /* unknown on one side: metadata alone decides, and a.txt's is the same (only what
         * the old one lacks differs) */
        assert_int_equal(nch, 2);
        assert_string_equal(ch[0], "b b%.txt");
        assert_string_equal(ch[1], "link");
        assert_int_equal(ndel, 0);
        pathlist_free(ch, nch);
        pathlist_free(del, ndel);
        manifest_free(&p);
        pbuf_free(&b);
        scan_free(&s);
        free_entries(v, 4);
        manifest_free(&copy);
        manifest_free(&next);
        manifest_free(&base);
}

static void build(struct manifest *out, const struct manifest *base, const char *archive, struct scan_entry *v,
                  size_t n) {
        struct scan s;
        struct manifest_archive a = arch(archive, 10);

        scan_of(&s, v, n);
        assert_int_equal(manifest_from_scan(out, base, &s, &a), 0);
        header(out, base->number + 1, base->number);
        scan_free(&s);
}

static void test_rebase(void **state) {
        (void)state;
        struct manifest base, ours, theirs, merged;
        char why[256] = "";

        make_base(&base);
        /* theirs: a new file in Documents (the directory changed too) */
        struct scan_entry t[] = {se('+', 'd', "Documents", 0, 30), se('=', 'f', "Documents/a.txt", 3, 11),
                                 se('+', 'f', "Documents/new.txt", 5, 31), se('=', 'f', "b b%.txt", 4, 12),
                                 se('=', 'l', "link", 8, 13)};
        build(&theirs, &base, "alice.tar.zst.a-theirs", t, 5);
        /* ours: the link removed, a file added to Documents too, b changed */
        struct scan_entry o[] = {se('+', 'd', "Documents", 0, 40), se('=', 'f', "Documents/a.txt", 3, 11),
                                 se('+', 'f', "Documents/mine.txt", 6, 41), se('+', 'f', "b b%.txt", 9, 42)};
        build(&ours, &base, "alice.tar.zst.a-ours", o, 4);

        assert_int_equal(manifest_rebase(&merged, &base, &ours, &theirs, why, sizeof why), 0);
        assert_int_equal(merged.n, 5);
        assert_non_null(manifest_find(&merged, "Documents/new.txt"));
        assert_non_null(manifest_find(&merged, "Documents/mine.txt"));
        assert_null(manifest_find(&merged, "link"));
        assert_int_equal(manifest_find(&merged, "b b%.txt")->size, 9);
        assert_int_equal(manifest_find(&merged, "Documents")->mtime_s, 40); /* ours, the later */
        assert_int_equal(merged.narch, 3);
        assert_string_equal(merged.arch[manifest_find(&merged, "Documents/new.txt")->archive].name,
                             "alice.tar.zst.a-theirs");
        assert_string_equal(merged.arch[manifest_find(&merged, "Documents/mine.txt")->archive].name,
                             "alice.tar.zst.a-ours");
        manifest_free(&merged);
        manifest_free(&ours);

        /* ours rewrote b keeping its size and mtime (touch -r, a tag editor): still ours' change
         * (the review: the merge took the base's entry, and the prune removed ours' archive) */
        struct scan_entry same[] = {se('=', 'd', "Documents", 0, 10), se('=', 'f', "Documents/a.txt", 3, 11),
                                    se('+', 'f', "b b%.txt", 4, 12), se('=', 'l', "link", 8, 13)};
        build(&ours, &base, "alice.tar.zst.a-ours-same", same, 4);
        assert_int_equal(manifest_rebase(&merged, &base, &ours, &theirs, why, sizeof why), 0);
        assert_string_equal(merged.arch[manifest_find(&merged, "b b%.txt")->archive].name,
                            "alice.tar.zst.a-ours-same");
        assert_non_null(manifest_find(&merged, "Documents/new.txt"));
        manifest_free(&merged);
        manifest_free(&ours);
        free_entries(same, 4);

        /* both changed one file: a clash */
        struct scan_entry c[] = {se('=', 'd', "Documents", 0, 10), se('=', 'f', "Documents/a.txt", 3, 11),
                                 se('+', 'f', "Documents/new.txt", 7, 50), se('=', 'f', "b b%.txt", 4, 12),
                                 se('=', 'l', "link", 8, 13)};
        build(&ours, &base, "alice.tar.zst.a-ours2", c, 5);
        assert_int_equal(manifest_rebase(&merged, &base, &ours, &theirs, why, sizeof why), -EBUSY);
        assert_string_equal(why, "'Documents/new.txt' changed on both machines");
        manifest_free(&ours);

        /* ours deleted the directory theirs wrote into */
        struct scan_entry d[] = {se('=', 'f', "b b%.txt", 4, 12), se('=', 'l', "link", 8, 13)};
        build(&ours, &base, "alice.tar.zst.a-ours3", d, 2);
        assert_int_equal(manifest_rebase(&merged, &base, &ours, &theirs, why, sizeof why), -EBUSY);
        manifest_free(&ours);

        free_entries(t, 5);
        free_entries(o, 4);
        free_entries(c, 5);
        free_entries(d, 2);
        manifest_free(&theirs);
        manifest_free(&base);
}

/* A merge of 40,000 changed paths onto 40,000 deleted ones elsewhere, and the clash of a file
 * written into a directory the other side deleted, found through its ancestor (the review:
 * every changed path was compared with every deleted one, 7.4 s for this). */
static void test_rebase_large(void **state) {
        (void)state;
        enum { N = 40000 };
        struct manifest base, ours, theirs, merged;
        struct manifest_archive a0 = arch("alice.tar.zst.a-base", 100);
        struct scan sb, so, st;
        char why[256] = "", path[64];

        scan_init(&sb);
        scan_init(&so);
        scan_init(&st);
        for (int side = 0; side < 2; side++) {
                struct scan_entry d = se('+', 'd', side ? "B" : "A", 0, 10);
                struct scan_entry d2 = d;
                assert_int_equal(scan_add(&sb, &d), 0);
                d2.path = strdup(side ? "B" : "A");
                d2.flag = side ? '+' : '=';
                d2.mtime_s = side ? 20 : 10; /* theirs: B's mtime changed with its deletions */
                assert_int_equal(scan_add(&st, &d2), 0);
                struct scan_entry d3 = se('=', 'd', side ? "B" : "A", 0, 10);
                assert_int_equal(scan_add(&so, &d3), 0);
                for (int i = 0; i < N; i++) {
                        snprintf(path, sizeof path, "%s/f%05d", side ? "B" : "A", i);
                        struct scan_entry e = se('+', 'f', path, 3, 11);
                        assert_int_equal(scan_add(&sb, &e), 0);
                        struct scan_entry eo = se(side ? '=' : '+', 'f', path, side ? 3 : 4, side ? 11 : 12);
                        assert_int_equal(scan_add(&so, &eo), 0);
                        if (!side) {
                                struct scan_entry et = se('=', 'f', path, 3, 11);
                                assert_int_equal(scan_add(&st, &et), 0);
                        }
                }
        }
        assert_int_equal(scan_sort(&sb), 0);
        assert_int_equal(scan_sort(&so), 0);
        assert_int_equal(scan_sort(&st), 0);
        assert_int_equal(manifest_from_scan(&base, NULL, &sb, &a0), 0);
        header(&base, 1, 0);
        struct manifest_archive ao = arch("alice.tar.zst.a-ours", 10), at = arch("alice.tar.zst.a-theirs", 10);
        assert_int_equal(manifest_from_scan(&ours, &base, &so, &ao), 0);
        header(&ours, 2, 1);
        assert_int_equal(manifest_from_scan(&theirs, &base, &st, &at), 0);
        header(&theirs, 2, 1);
        assert_int_equal(manifest_rebase(&merged, &base, &ours, &theirs, why, sizeof why), 0);
        assert_int_equal(merged.n, 2 + N);
        assert_int_equal(manifest_find(&merged, "A/f00007")->size, 4);
        assert_null(manifest_find(&merged, "B/f00007"));
        manifest_free(&merged);

        /* ours writes a new file into B, whose files theirs deleted with B itself */
        scan_free(&st);
        scan_init(&st);
        struct scan_entry only = se('=', 'd', "A", 0, 10);
        assert_int_equal(scan_add(&st, &only), 0);
        for (int i = 0; i < N; i++) {
                snprintf(path, sizeof path, "A/f%05d", i);
                struct scan_entry et = se('=', 'f', path, 3, 11);
                assert_int_equal(scan_add(&st, &et), 0);
        }
        assert_int_equal(scan_sort(&st), 0);
        manifest_free(&theirs);
        assert_int_equal(manifest_from_scan(&theirs, &base, &st, &at), 0);
        header(&theirs, 2, 1);
        struct scan_entry extra = se('+', 'f', "B/new", 1, 30);
        assert_int_equal(scan_add(&so, &extra), 0);
        assert_int_equal(scan_sort(&so), 0);
        manifest_free(&ours);
        assert_int_equal(manifest_from_scan(&ours, &base, &so, &ao), 0);
        header(&ours, 2, 1);
        assert_int_equal(manifest_rebase(&merged, &base, &ours, &theirs, why, sizeof why), -EBUSY);
        assert_non_null(strstr(why, "changed on both machines"));
        /* and the other way: theirs changed a file in B, ours deleted B */
        assert_int_equal(manifest_rebase(&merged, &base, &theirs, &ours, why, sizeof why), -EBUSY);

        scan_free(&sb);
        scan_free(&so);
        scan_free(&st);
        manifest_free(&base);
        manifest_free(&ours);
        manifest_free(&theirs);
}

static void test_names(void **state) {
        (void)state;
        char name[64];

        assert_int_equal(manifest_file_name("alice.tar.zst", 42, name, sizeof name), 0);
        assert_string_equal(name, "alice.tar.zst.m00000042");
        assert_int_equal(manifest_name_number("alice.tar.zst", name), 42);
        assert_int_equal(manifest_name_number("alice.tar.zst", "alice.tar.zst.m0000004"), 0);
        assert_int_equal(manifest_name_number("alice.tar.zst", "alice.tar.zst.m0000004x"), 0);
        assert_int_equal(manifest_name_number("alice.tar.zst", "bob.tar.zst.m00000042"), 0);
        assert_int_equal(manifest_name_number("alice.tar.zst", "alice.tar.zst.meta"), 0);
        assert_int_equal(manifest_name_number("alice.tar.zst", "alice.tar.zst.m123456789"), 123456789);
}

/* git's racy-clean rule: what changed as the walk passed is compared again next time */
static void test_racy(void **state) {
        (void)state;
        const struct timespec start = {.tv_sec = 1700000100, .tv_nsec = 500000000};
        struct scan s;
        struct {
                const char *path;
                int64_t ctime_s;
                uint32_t ctime_ns, mtime_ns;
                bool racy;
        } c[] = {
                {"old", 1700000000, 1, 1, false},                /* long before the walk */
                {"before-window", 1700000100, 440000000, 1, false}, /* 60 ms before it */
                {"in-window", 1700000100, 470000000, 1, true},      /* 30 ms before it */
                {"during", 1700000101, 0, 7, true},                 /* while the walk ran */
                {"coarse-recent", 1700000100, 0, 0, true},          /* whole seconds, 0.5 s before */
                {"coarse-old", 1700000099, 0, 0, false},            /* whole seconds, 1.5 s before */
                {"edge-fine", 1700000100, 450000000, 1, true},      /* exactly 50 ms before */
                {"year-3000", 32503680000, 5, 5, true},             /* far after (ns overflow) */
                {"year-10000", 253402300800, 0, 0, true},
                {"before-1970", -1000000, 5, 5, false},
                {"far-past", INT64_MIN / 2, 5, 5, false},
        };
        scan_init(&s);
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
                struct scan_entry e = {.flag = '+', .type = 'f', .mode = 0644, .ino = 10 + i, .size = 1,
                                       .mtime_s = c[i].ctime_s, .mtime_ns = c[i].mtime_ns,
                                       .ctime_s = c[i].ctime_s, .ctime_ns = c[i].ctime_ns,
                                       .path = strdup(c[i].path)};
                assert_int_equal(scan_add(&s, &e), 0);
        }
        scan_mark_racy(&s, &start);
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
                /* the same file, unchanged since the walk */
                struct stat sb = {.st_mode = S_IFREG | 0644, .st_ino = 10 + i, .st_size = 1};
                sb.st_mtim = (struct timespec){c[i].ctime_s, c[i].mtime_ns};
                sb.st_ctim = (struct timespec){c[i].ctime_s, c[i].ctime_ns};
                assert_true(scan_entry_matches(&s.v[i], &sb) == !c[i].racy);
        }
        scan_free(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_racy),
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_scan_roundtrip_and_hostile),
                cmocka_unit_test(test_pathlist),
                cmocka_unit_test(test_manifest_roundtrip),
                cmocka_unit_test(test_manifest_hostile),
                cmocka_unit_test(test_from_scan_and_diff),
                cmocka_unit_test(test_origin),
                cmocka_unit_test(test_rebase),
                cmocka_unit_test(test_rebase_large),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
