/* The smb:// store's URLs and server probe (pgsmb-store-smb-url.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No character a Windows/Samba share cannot hold or reads as a separator or stream. */
bool smb_name_ok(const char *rel);
/* Append s to *out (length *len), %-encoded but for unreserved characters and '/'. */
int smb_append_encoded(char **out, size_t *len, const char *s);
/* smb://server[:port]/share[/dir...] -> server, port (0: default), "share[/dir...]" (decoded,
 * checked). The reason in err on error. */
int smb_parse_url(const char *url, char **ret_server, uint16_t *ret_port, char **ret_path, char *err,
                  size_t errlen);
/* Is anything listening on server:port (445 then 139 without a port) within timeout_ms? 0 also
 * for a name getaddrinfo cannot resolve (left to libsmbclient). */
int smb_probe_server(const char *server, uint16_t port, int timeout_ms);
