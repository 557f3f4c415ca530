/* libFuzzer target: pgina.conf as pginactl `config check` reads it: conf_load (libinih, our line
 * reader, [service] and [order]), then every plugin section against the real plugins' option
 * tables and their check_config (conf_check_plugins), with the plugins built next to this target
 * (FUZZ_PLUGIN_DIR) dlopen()ed once. The input is the file. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "config.h"
#include "fuzz-common.h"
#include "host.h"
#include "log.h"
#include "util.h"

static const char *const plugin_names[] = {"localmachine", "pgsmb", "ldap", "testplugin"};
static struct loaded_plugin loaded[ELEMENTSOF(plugin_names)];
static struct plugin_set plugins = {loaded, 0};
static int conf_fd = -1;
static char conf_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *dir = getenv("PGINA_FUZZ_PLUGIN_DIR") ?: FUZZ_PLUGIN_DIR;

        log_set_level(-1);
        for (size_t i = 0; i < ELEMENTSOF(plugin_names); i++) {
                char path[4096];
                const struct pgina_plugin *desc;
                void *dl;

                snprintf(path, sizeof path, "%s/%s.so", dir, plugin_names[i]);
                dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (!dl) {
                        fprintf(stderr, "fuzz_config: %s (only the core is checked without it)\n",
                                dlerror());
                        continue;
                }
                desc = dlsym(dl, PGINA_PLUGIN_SYMBOL);
                FUZZ_ASSERT(desc && desc->abi_version == PGINA_PLUGIN_ABI_VERSION &&
                            streq(desc->name, plugin_names[i]));
                loaded[plugins.n++] = (struct loaded_plugin){.name = (char *)plugin_names[i],
                                                             .path = strdup(path), .dl = dl,
                                                             .desc = desc};
        }
        conf_fd = memfd_create("pgina.conf", MFD_CLOEXEC);
        FUZZ_ASSERT(conf_fd >= 0);
        snprintf(conf_path, sizeof conf_path, "/proc/self/fd/%d", conf_fd);
        return 0;
}

/* Length of line `line` (1-based, without its newline) of the input; -1 past its end. */
static long input_line_len(const uint8_t *data, size_t size, unsigned long line) {
        const uint8_t *p = data, *end = data + size, *nl;

        for (unsigned long i = 1; i < line; i++) {
                if (!(nl = memchr(p, '\n', (size_t)(end - p))))
                        return -1;
                p = nl + 1;
        }
        nl = memchr(p, '\n', (size_t)(end - p));
        return (nl ? nl : end) - p;
}

/* Every error is one "FILE:LINE: message" or "FILE: message" line, and a line called too long
 * is one. */
static void check_errors(const char *errors, const uint8_t *data, size_t size) {
        size_t plen = strlen(conf_path);

        FUZZ_ASSERT(errors && *errors && errors[strlen(errors) - 1] == '\n');
        for (const char *l = errors; *l; l = strchr(l, '\n') + 1) {
                unsigned long line, max;
                int n = 0;

                FUZZ_ASSERT(strncmp(l, conf_path, plen) == 0 && l[plen] == ':');
                if (sscanf(l + plen, ":%lu: line longer than %lu bytes%n", &line, &max, &n) == 2 &&
                    n > 0)
                        FUZZ_ASSERT(input_line_len(data, size, line) > (long)max);
        }
}

static void check_conf(const struct conf *c) {
        char **names = NULL;
        size_t n;

        FUZZ_ASSERT(c->socket_path && c->state_dir && c->plugin_dir);
        FUZZ_ASSERT(c->max_workers >= 1 && c->max_workers <= CONF_MAX_WORKERS_MAX);
        FUZZ_ASSERT(c->max_queued <= CONF_MAX_QUEUED_MAX);
        for (int s = 0; s < _CONF_STAGE_MAX; s++)
                for (size_t i = 0; i < c->norder[s]; i++)
                        FUZZ_ASSERT(valid_plugin_name(c->order[s][i]));
        for (size_t i = 0; i < c->nentries; i++)
                FUZZ_ASSERT(conf_find(c, c->entries[i].section, c->entries[i].key));
        n = conf_plugin_names(c, &names);
        for (size_t i = 0; i < n; i++) {
                FUZZ_ASSERT(valid_plugin_name(names[i]));
                free(names[i]);
        }
        free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_conf_ struct conf *c = NULL;
        _cleanup_free_ char *errors = NULL;
        int r;

        FUZZ_ASSERT(ftruncate(conf_fd, 0) == 0 && lseek(conf_fd, 0, SEEK_SET) == 0);
        fuzz_write_all(conf_fd, data, size);
        r = conf_load(conf_path, &c, &errors);
        if (r < 0) {
                FUZZ_ASSERT(!c);
                if (r == -EINVAL)
                        check_errors(errors, data, size);
                return 0;
        }
        FUZZ_ASSERT(c && !errors);
        check_conf(c);
        r = conf_check_plugins(c, &plugins, &errors);
        FUZZ_ASSERT(r == 0 ? !errors : r == -EINVAL);
        if (errors)
                check_errors(errors, data, size);
        return 0;
}
