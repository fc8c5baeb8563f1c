/* conf_value.c -- one option row and one text value become one field.
 *
 * Every check an option's type implies lives here, so the main file, the
 * users file and --set all give the same message for the same mistake.
 */
#include "conf_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))

/* Role names in the users file, in Mhtas__V1__Role order from 1. */
static const char *const role_names[] = { "operator", "dispatcher", "practitioner", "supervisor", NULL };

static const char *const bool_true[] = { "true", "yes", "on", "1", NULL };
static const char *const bool_false[] = { "false", "no", "off", "0", NULL };

static int in_list(const char *const *list, const char *s)
{
    for (int i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    return -1;
}

bool conf__is_name(const char *s, bool dot)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '_' || c == '-' || (dot && c == '.')))
            return false;
    }
    return n > 0 && n <= CONF_MAX_NAME;
}

int conf__index(char *const *arr, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(arr[i], s) == 0)
            return (int)i;
    return -1;
}

int conf__add_unique(char ***arr, size_t *n, const char *s)
{
    if (conf__index(*arr, *n, s) >= 0)
        return 0;
    char **grown = hub_realloc(*arr, (*n + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    *arr = grown;
    char *copy = hub_strdup(s);
    if (copy == NULL)
        return -1;
    grown[(*n)++] = copy;
    return 0;
}

/* ----------------------------------------------------------------- paths */

char *conf__resolve(const char *dir, const char *rel)
{
    size_t dl = rel[0] == '/' ? 0 : strlen(dir);
    size_t rl = strlen(rel);
    char *joined = hub_malloc(dl + rl + 2);
    if (joined == NULL)
        return NULL;
    if (dl > 0) {
        memcpy(joined, dir, dl);
        joined[dl] = '/';
        memcpy(joined + dl + 1, rel, rl + 1);
    } else {
        memcpy(joined, rel, rl + 1);
    }

    /* Normalise in place: components are copied left to right into `out`;
     * ".." drops the last one written. Lexical, so "a/link/.." becomes "a"
     * even if link is a symbolic link: good enough for paths written by an
     * administrator, and the directories need not exist yet. */
    char *out = hub_malloc(strlen(joined) + 2);
    if (out == NULL) {
        hub_free(joined);
        return NULL;
    }
    size_t o = 0;
    const char *p = joined;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the slash; "/.." is "/" */
        } else {
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    hub_free(joined);
    return out;
}

char *conf__dir_of(const char *path)
{
    char *real = realpath(path, NULL);
    if (real == NULL)
        return NULL;
    char *slash = strrchr(real, '/');
    size_t len = slash == real ? 1 : (size_t)(slash - real);
    char *dir = hub_strndup(real, len);
    free(real); /* realpath allocates with malloc */
    if (dir == NULL)
        errno = ENOMEM;
    return dir;
}

char *conf__display(const char *path)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) != NULL) {
        size_t n = strlen(cwd);
        if (n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
            return hub_strdup(path + n + 1);
    }
    return hub_strdup(path);
}

/* ----------------------------------------------------------------- lists */

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hub_free(items[i]);
    hub_free(items);
}

/* Splits "a, b ,c" into items (whitespace trimmed), appending to *items.
 * One trailing comma is allowed, so a list can break after a comma and go
 * on on an indented line. */
static int parse_list(const conf_option_t *o, const char *value, char ***items, size_t *n, char *msg,
                      size_t msglen)
{
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return 0; /* an empty list */
    for (;;) {
        const char *e = strchr(p, ',');
        if (e == NULL)
            e = p + strlen(p);
        const char *s = p, *t = e;
        while (s < t && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (s == t && *e == '\0' && e > value && p > value)
            return 0; /* a trailing comma, as before a continuation line */
        if (s == t) {
            snprintf(msg, msglen, "empty item in list \"%s\"", value);
            return -1;
        }
        char *item = hub_strndup(s, (size_t)(t - s));
        if (item == NULL)
            goto nomem;
        if (o->flags & CONF_F_IDENT && !conf__is_name(item, false)) {
            snprintf(msg, msglen, "\"%s\" is not a valid name (1 to %d letters, digits, '_' or '-')", item,
                     CONF_MAX_NAME);
            hub_free(item);
            return -1;
        }
        if (conf__index(*items, *n, item) >= 0) {
            snprintf(msg, msglen, "\"%s\" is listed twice", item);
            hub_free(item);
            return -1;
        }
        char **grown = hub_realloc(*items, (*n + 1) * sizeof *grown);
        if (grown == NULL) {
            hub_free(item);
            goto nomem;
        }
        *items = grown;
        grown[(*n)++] = item;
        if (*e == '\0')
            return 0;
        p = e + 1;
    }
nomem:
    snprintf(msg, msglen, "out of memory");
    return -1;
}

/* ---------------------------------------------------------------- values */

static int parse_u32(const char *value, uint32_t min, uint32_t max, uint32_t *out, char *msg, size_t msglen)
{
    const char *p = value;
    uint64_t v = 0;
    if (*p == '\0')
        goto bad;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX) {
            snprintf(msg, msglen, "%s is out of range (%u..%u)", value, min, max);
            return -1;
        }
    }
    if (v < min || v > max) {
        snprintf(msg, msglen, "%s is out of range (%u..%u)", value, min, max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
bad:
    snprintf(msg, msglen, "\"%s\" is not a whole number", value);
    return -1;
}

static void choices_text(const char *const *choices, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; choices[i] != NULL && o < len; i++) {
        int n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", choices[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static int parse_hash(const char *value, uint8_t out[HUB_TOKEN_HASH_LEN])
{
    static const char prefix[] = "blake2b:";
    if (strncmp(value, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *h = value + sizeof prefix - 1;
    if (strlen(h) != 2 * HUB_TOKEN_HASH_LEN)
        return -1;
    for (int i = 0; i < HUB_TOKEN_HASH_LEN; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = h[2 * i + k];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

int conf__set(const conf_option_t *o, void *base, const char *value, const char *dir, bool append,
              char *msg, size_t msglen)
{
    char choices[256];
    if (append && o->type != CONF_LIST) {
        snprintf(msg, msglen, "an indented line continues a value only for lists");
        return -1;
    }
    switch (o->type) {
    case CONF_STRING:
    case CONF_PATH:
    case CONF_ENUM: {
        if (value[0] == '\0' && (o->flags & CONF_F_EMPTY_OK)) {
            char *empty = hub_strdup("");
            if (empty == NULL)
                goto nomem;
            char **f = FIELD(base, o->offset, char *);
            hub_free(*f);
            *f = empty;
            return 0;
        }
        if (value[0] == '\0') {
            snprintf(msg, msglen, "must not be empty");
            return -1;
        }
        if (o->type == CONF_ENUM && in_list(o->choices, value) < 0) {
            choices_text(o->choices, choices, sizeof choices);
            snprintf(msg, msglen, "\"%s\" is not one of: %s", value, choices);
            return -1;
        }
        if (o->flags & CONF_F_IDENT && !conf__is_name(value, false)) {
            snprintf(msg, msglen, "\"%s\" is not a valid name (1 to %d letters, digits, '_' or '-')", value,
                     CONF_MAX_NAME);
            return -1;
        }
        char *copy = o->type == CONF_PATH ? conf__resolve(dir, value) : hub_strdup(value);
        if (copy == NULL)
            goto nomem;
        char **field = FIELD(base, o->offset, char *);
        hub_free(*field);
        *field = copy;
        return 0;
    }
    case CONF_UINT32: {
        uint32_t v;
        if (parse_u32(value, o->min, o->max, &v, msg, msglen) != 0)
            return -1;
        *FIELD(base, o->offset, uint32_t) = v;
        return 0;
    }
    case CONF_PORT: {
        uint32_t v;
        if (parse_u32(value, 0, 65535, &v, msg, msglen) != 0)
            return -1;
        *FIELD(base, o->offset, int) = (int)v;
        return 0;
    }
    case CONF_BOOL:
        if (in_list(bool_true, value) >= 0) {
            *FIELD(base, o->offset, bool) = true;
        } else if (in_list(bool_false, value) >= 0) {
            *FIELD(base, o->offset, bool) = false;
        } else {
            snprintf(msg, msglen, "\"%s\" is not true or false", value);
            return -1;
        }
        return 0;
    case CONF_LIST: {
        char ***field = FIELD(base, o->offset, char **);
        size_t *count = FIELD(base, o->count_offset, size_t);
        char **items = NULL;
        size_t n = 0;
        if (append) {
            /* Parse into a copy, so a bad item leaves the field as it was. */
            for (size_t i = 0; i < *count; i++)
                if (conf__add_unique(&items, &n, (*field)[i]) != 0) {
                    free_list(items, n);
                    goto nomem;
                }
        }
        if (parse_list(o, value, &items, &n, msg, msglen) != 0) {
            free_list(items, n);
            return -1;
        }
        free_list(*field, *count);
        *field = items;
        *count = n;
        return 0;
    }
    case CONF_ROLE: {
        int r = in_list(role_names, value);
        if (r < 0) {
            choices_text(role_names, choices, sizeof choices);
            snprintf(msg, msglen, "\"%s\" is not one of: %s", value, choices);
            return -1;
        }
        *FIELD(base, o->offset, Mhtas__V1__Role) = (Mhtas__V1__Role)(r + 1);
        return 0;
    }
    case CONF_TOKEN_HASH:
        if (parse_hash(value, FIELD(base, o->offset, uint8_t)) != 0) {
            snprintf(msg, msglen,
                     "expected \"blake2b:\" and 64 lower-case hex digits (print one with "
                     "mhtas-hub --hash-token TOKEN)");
            return -1;
        }
        return 0;
    }
    snprintf(msg, msglen, "unknown option type");
    return -1;
nomem:
    snprintf(msg, msglen, "out of memory");
    return -1;
}

void conf__clear(const conf_option_t *o, void *base)
{
    switch (o->type) {
    case CONF_STRING:
    case CONF_PATH:
    case CONF_ENUM: {
        char **field = FIELD(base, o->offset, char *);
        hub_free(*field);
        *field = NULL;
        break;
    }
    case CONF_LIST: {
        char ***field = FIELD(base, o->offset, char **);
        size_t *count = FIELD(base, o->count_offset, size_t);
        free_list(*field, *count);
        *field = NULL;
        *count = 0;
        break;
    }
    default:
        break;
    }
}

void conf__clear_all(const conf_option_t *tab, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        conf__clear(&tab[i], base);
}

const conf_option_t *conf__find(const conf_option_t *tab, size_t n, const char *section, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tab[i].section, section) == 0 && strcmp(tab[i].key, key) == 0)
            return &tab[i];
    return NULL;
}

/* ------------------------------------------------------------- reference */

void conf__write_rows(FILE *out, const conf_option_t *tab, size_t n)
{
    char choices[256];
    for (size_t i = 0; i < n; i++) {
        const conf_option_t *o = &tab[i];
        fprintf(out, "| `[%s]` | `%s` | ", o->section, o->key);
        if (o->def != NULL && o->def[0] != '\0')
            fprintf(out, "`%s`", o->def);
        else if (o->flags & CONF_F_REQUIRED)
            fprintf(out, "(required)");
        else
            fprintf(out, "(none)");
        fprintf(out, " | %s", o->doc);
        switch (o->type) {
        case CONF_UINT32:
            fprintf(out, " Whole number, %u..%u.", o->min, o->max);
            break;
        case CONF_PORT:
            fprintf(out, " Port, 0..65535 (0: any free port).");
            break;
        case CONF_ENUM:
            choices_text(o->choices, choices, sizeof choices);
            fprintf(out, " One of: %s.", choices);
            break;
        case CONF_ROLE:
            choices_text(role_names, choices, sizeof choices);
            fprintf(out, " One of: %s.", choices);
            break;
        case CONF_BOOL:
            fprintf(out, " true or false.");
            break;
        case CONF_LIST:
            fprintf(out, (o->flags & CONF_F_IDENT) ? " Comma-separated names." : " Comma-separated list.");
            break;
        case CONF_PATH:
            fprintf(out, " A relative path is resolved against the main file's directory (in --set: the "
                         "current directory).");
            break;
        case CONF_STRING:
            if (o->flags & CONF_F_IDENT)
                fprintf(out, " A name: letters, digits, `_`, `-`.");
            break;
        default:
            break;
        }
        fprintf(out, " |\n");
    }
}
