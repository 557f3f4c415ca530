/* The ldap plugin's semantic config check (plugin.h's check_config): servers, patterns, rules,
 * [ldap.attributes] and the group filter, each problem named with its key. */
#pragma once

#include <pgina/plugin.h>

int pgldap_check_config(struct pgina_ctx *ctx);
