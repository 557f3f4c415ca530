/* Helpers shared by every pgina process. */
#include <pgina/util.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

bool valid_logon_name(const char *name) {
        const char *at = name ? strchr(name, '@') : NULL;
        char local[33];

        if (!at)
                return valid_user_name(name);
        if ((size_t)(at - name) >= sizeof local || strlen(at + 1) > 255)
                return false;
        memcpy(local, name, (size_t)(at - name));
        local[at - name] = 0;
        if (!valid_user_name(local) || !at[1] || at[1] == '.' || at[1] == '-')
                return false;
        for (const char *p = at + 1; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')
                        continue;
                if (*p == '.' && p[1] && p[1] != '.' && p[-1] != '.')
                        continue;
                return false;
        }
        return true;
}

bool valid_user_name(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > 32)
                return false;
        if (!(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z')))
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = name[i];
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                    c == '.')
                        continue;
                if (c == '$' && i == n - 1)
                        continue;
                return false;
        }
        return true;
}

bool valid_plugin_name(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

int parse_bool(const char *v) {
        static const char *const yes[] = {"1", "yes", "true", "on"};
        static const char *const no[] = {"0", "no", "false", "off"};

        if (!v)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

int write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char tmp[PATH_MAX], dirbuf[PATH_MAX];
        _cleanup_close_ int fd = -1, dfd = -1;
        int r;

        if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        snprintf(dirbuf, sizeof dirbuf, "%s", path);
        dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
}

long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One message, one line: control characters (a newline in an archive member's name, an escape
 * sequence in a directory attribute) become \n, \t, \r or \xHH, so nothing that reaches a log
 * line can forge another line or drive a terminal. In place, truncated to len. */
void log_escape(char *line, size_t len) {
        char out[2048];
        size_t o = 0;

        if (!strpbrk(line, "\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020"
                           "\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037\177"))
                return;
        for (const unsigned char *p = (const unsigned char *)line; *p && o + 5 < sizeof out; p++) {
                if (*p >= 0x20 && *p != 0x7f) {
                        out[o++] = (char)*p;
                        continue;
                }
                out[o++] = '\\';
                switch (*p) {
                case '\n': out[o++] = 'n'; break;
                case '\t': out[o++] = 't'; break;
                case '\r': out[o++] = 'r'; break;
                default: o += (size_t)snprintf(out + o, sizeof out - o, "x%02x", *p); break;
                }
        }
        out[o] = 0;
        snprintf(line, len, "%s", out);
}
