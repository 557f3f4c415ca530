/* libFuzzer target: what a store or the user's process may hand root in store format 2: the
 * manifest (manifest_parse) and a scan or path list (scan_parse, pathlist_parse). The first byte
 * picks the parser. Invariants: a parsed manifest formats back to text that parses to the same
 * entries (and checksum); every path a parser accepts is a valid relative path. */
#include <string.h>

#include "fuzz-common.h"
#include "pgsmb-manifest.h"
#include "pgsmb-scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *)data + 1;
        size_t n = size ? size - 1 : 0;
        char err[256];

        if (size == 0)
                return 0;
        switch (data[0] % 3) {
        case 0: {
                struct manifest m, back;
                struct pbuf b;
                if (manifest_parse(&m, p, n, err, sizeof err) < 0)
                        break;
                for (size_t i = 0; i < m.n; i++) {
                        FUZZ_ASSERT(pgsmb_path_valid(m.v[i].path));
                        FUZZ_ASSERT(m.v[i].archive < m.narch);
                        FUZZ_ASSERT(i == 0 || strcmp(m.v[i - 1].path, m.v[i].path) < 0);
                }
                pbuf_init(&b);
                FUZZ_ASSERT(manifest_format(&m, &b) == 0);
                FUZZ_ASSERT(manifest_parse(&back, (const char *)b.data, b.len, err, sizeof err) == 0);
                FUZZ_ASSERT(back.n == m.n && back.narch == m.narch && back.number == m.number);
                for (size_t i = 0; i < m.n; i++)
                        FUZZ_ASSERT(strcmp(back.v[i].path, m.v[i].path) == 0);
                manifest_free(&back);
                pbuf_free(&b);
                manifest_free(&m);
                break;
        }
        case 1: {
                struct scan s;
                size_t line;
                if (scan_parse(&s, p, n, &line) < 0)
                        break;
                for (size_t i = 0; i < s.n; i++)
                        FUZZ_ASSERT(pgsmb_path_valid(s.v[i].path));
                scan_free(&s);
                break;
        }
        default: {
                char **v;
                size_t cnt, line;
                if (pathlist_parse(p, n, &v, &cnt, &line) < 0)
                        break;
                for (size_t i = 0; i < cnt; i++)
                        FUZZ_ASSERT(pgsmb_path_valid(v[i]));
                pathlist_free(v, cnt);
                break;
        }
        }
        return 0;
}
