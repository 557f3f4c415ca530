/* The rules of the ldap plugin's options (see ldap-rules.h). */
#include "ldap-rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pgina/util.h>

int pgldap_authz_rule_parse(const char *w, struct authz_rule *r) {
        if (!strncmp(w, "allow:", 6)) {
                r->allow = true;
                w += 6;
        } else if (!strncmp(w, "deny:", 5)) {
                r->allow = false;
                w += 5;
        } else
                return -EINVAL;
        r->negate = *w == '!';
        if (r->negate)
                w++;
        r->group = w;
        return *w ? 0 : -EINVAL;
}

int pgldap_gateway_rule_parse(const char *w, char **group, const char **local) {
        const char *eq = strrchr(w, '='), *last_rdn;
        char *g;

        if (!eq || eq == w || !valid_user_name(eq + 1))
                return -EINVAL;
        g = strndup(w, (size_t)(eq - w));
        if (!g)
                return -ENOMEM;
        /* a DN whose last RDN has no '=' lost its "=localgroup": cn=x,dc=example,dc=com */
        last_rdn = strrchr(g, ',');
        if (strchr(g, '=') && !strchr(last_rdn ? last_rdn : g, '=')) {
                free(g);
                return -EINVAL;
        }
        *group = g;
        *local = eq + 1;
        return 0;
}
