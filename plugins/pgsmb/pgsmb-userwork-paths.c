/* Path rules of profile archives (runs as the user): shared by archive, extract and the check
 * after an external extractor. */
#include "pgsmb-userwork-archive-internal.h"

/* ---- path rules, shared by archive, extract and the check after an external extractor ---- */

/* A relative path with no ".." component, not empty, no NUL (a C string cannot hold one). "."
 * components and doubled slashes are harmless. */
bool pgsmb_path_is_inside(const char *p) {
        if (!p || !*p || *p == '/')
                return false;
        for (const char *s = p; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return false;
                s += n;
                s += strspn(s, "/");
        }
        return true;
}

/* Number of name components of the directory holding `path` (a pgsmb_path_is_inside() path), not
 * counting ".": "a/b/l" -> 2, "l" -> 0, "./x/l" -> 1. */
static size_t parent_depth(const char *path) {
        size_t depth = 0;
        for (const char *s = path; *s;) {
                size_t n = strcspn(s, "/");
                bool is_dot = n == 1 && s[0] == '.';
                s += n;
                if (!*s)
                        break; /* the last component is the link itself */
                s += strspn(s, "/");
                if (!*s)
                        break; /* "a/b/" : b is the last component */
                if (!is_dot)
                        depth++;
        }
        return depth;
}

/* A symlink at `linkpath` with content `target` stays inside the tree when the target is relative
 * and its ".." components all come first and climb no higher than the link's directory. A ".."
 * after a name is refused: "a/b/.." is not "a" when b is itself a link, so such a target cannot
 * be judged without following links. By induction every link in the tree then resolves inside. */
bool pgsmb_symlink_stays_inside(const char *linkpath, const char *target) {
        if (!target || !*target || *target == '/')
                return false;
        size_t ups = 0;
        bool seen_name = false;
        for (const char *s = target; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.') {
                        if (seen_name)
                                return false;
                        ups++;
                } else if (n > 0 && !(n == 1 && s[0] == '.'))
                        seen_name = true;
                s += n;
                s += strspn(s, "/");
        }
        return ups <= parent_depth(linkpath);
}

/* Exclusions: relative paths, compared whole ("./.cache/" means ".cache"). */
int pgsmb_exclude_normalize(const char *const *exclude, char ***ret, char *err, size_t errlen) {
        size_t n = 0;
        while (exclude && exclude[n])
                n++;
        _cleanup_(strv_freep) char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return fail(err, errlen, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const char *s = exclude[i];
                while (s[0] == '.' && s[1] == '/')
                        s += 2 + strspn(s + 2, "/");
                if (!pgsmb_path_is_inside(s) || streq(s, "."))
                        return fail(err, errlen, -EINVAL,
                                    "exclude path '%s' must be a relative path inside the home "
                                    "(no '..', not absolute)",
                                    exclude[i]);
                v[i] = strdup(s);
                if (!v[i])
                        return fail(err, errlen, -ENOMEM, "out of memory");
                size_t l = strlen(v[i]);
                while (l > 1 && v[i][l - 1] == '/')
                        v[i][--l] = 0;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

bool pgsmb_is_excluded(char *const *ex, const char *rel) {
        for (; ex && *ex; ex++)
                if (streq(*ex, rel))
                        return true;
        return false;
}

/* Only user.* extended attributes travel: security.*, trusted.* and system.* belong to the machine
 * (and security.capability would be a privilege). POSIX ACLs travel as ACLs, not as xattrs. */
int pgsmb_entry_keep_user_xattrs(struct archive_entry *e) {
        int n = archive_entry_xattr_reset(e);
        if (n <= 0)
                return 0;
        struct kept {
                char *name;
                void *value;
                size_t size;
        } *kept = calloc((size_t)n, sizeof(*kept));
        if (!kept)
                return -ENOMEM;
        int k = 0, r = 0;
        const char *name;
        const void *value;
        size_t size;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && k < n) {
                if (strncmp(name, "user.", 5) != 0)
                        continue;
                kept[k].name = strdup(name);
                kept[k].value = malloc(size ? size : 1);
                if (!kept[k].name || !kept[k].value) {
                        free(kept[k].name);
                        free(kept[k].value);
                        r = -ENOMEM;
                        break;
                }
                memcpy(kept[k].value, value, size);
                kept[k++].size = size;
        }
        if (r == 0) {
                archive_entry_xattr_clear(e);
                for (int i = 0; i < k; i++)
                        archive_entry_xattr_add_entry(e, kept[i].name, kept[i].value, kept[i].size);
        }
        for (int i = 0; i < k; i++) {
                free(kept[i].name);
                free(kept[i].value);
        }
        free(kept);
        return r;
}
