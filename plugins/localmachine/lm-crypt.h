/* LocalMachine: password checks and hashes against /etc/shadow (libcrypt). */
#pragma once

#include <stddef.h>

/* Check password against user's shadow hash. Unknown users, locked or disabled accounts ("!",
 * "*", empty hash) take the same path as a wrong password: the hash function still runs, against a fixed
 * dummy yescrypt hash, so the time taken does not tell them apart. Returns 1 on a match, 0 on no
 * match for any reason, -errno when the shadow database could not be read. */
int lm_password_verify(const char *user, const char *password);

/* Hash password with yescrypt and a fresh salt. out must hold CRYPT_OUTPUT_SIZE bytes. */
int lm_password_hash(const char *password, char *out, size_t len);

/* An unguessable password: 32 bytes from getrandom, base64 encoded (44 chars + NUL). */
#define LM_RANDOM_PASSWORD_SIZE 45
int lm_password_random(char *out, size_t len);
