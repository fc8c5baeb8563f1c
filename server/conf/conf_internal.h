/* conf_internal.h -- what the files of the conf module share.
 *
 *   conf.c        the main file: option tables for [hub] [limits] [routing]
 *                 [console] [skills] and [borough:NAME], --set, validation,
 *                 the reference writer, hub_config_load/free
 *   conf_value.c  one option row + one text value -> a field (numbers,
 *                 enums, lists, paths, roles, token hashes)
 *   conf_ini.c    libinih driven through our own line reader (exact line
 *                 numbers, long lines and duplicate sections detected)
 *   conf_users.c  the users file, token hashing and look-up
 *
 * Nothing here is visible outside server/conf/.
 */
#ifndef MHTAS_CONF_INTERNAL_H
#define MHTAS_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* The core keeps boroughs and skills as bits of a 64-bit and a 32-bit mask
 * (core.h CORE_MAX_BOROUGHS / CORE_MAX_SKILLS); conf is a leaf module and
 * does not include core.h, so the limits are repeated here and checked at
 * load time, where the error can name the file. */
#define CONF_MAX_BOROUGHS 64
#define CONF_MAX_SKILLS 32
/* Ids, borough, provider and skill names. libinih keeps a section name in
 * 50 bytes and silently truncates a longer one: "borough:" or "user:" plus
 * 40 stays within it (conf_ini.c also rejects longer section names). */
#define CONF_MAX_NAME 40
#define CONF_MAX_SECTION 49

/* ------------------------------------------------------------ option table */

typedef enum conf_type {
    CONF_STRING,     /* char *, non-empty */
    CONF_PATH,       /* char *, resolved to an absolute path */
    CONF_ENUM,       /* char *, one of `choices` */
    CONF_UINT32,     /* uint32_t in [min, max] */
    CONF_PORT,       /* int in [0, 65535] */
    CONF_BOOL,       /* bool: true/false, yes/no, on/off, 1/0 */
    CONF_LIST,       /* char ** + size_t at count_offset; comma-separated */
    CONF_ROLE,       /* Mhtas__V1__Role from its lower-case name */
    CONF_TOKEN_HASH, /* uint8_t[HUB_TOKEN_HASH_LEN] from "blake2b:<64 hex>" */
} conf_type_t;

#define CONF_F_REQUIRED 1u /* no default: the section must set it */
#define CONF_F_IDENT 2u    /* the value (each item of a list) is a name: [A-Za-z0-9_-] */
#define CONF_F_EMPTY_OK 4u /* an empty value is allowed and kept empty ("none") */

/* One row per option (after redis config.c static_configs[]). The same row
 * parses, validates, frees and documents the option. `offset` is into
 * hub_config_t for the fixed sections, hub_borough_t for [borough:NAME] and
 * hub_user_t for [user:ID]. */
typedef struct conf_option {
    const char *section;           /* "hub", "borough:NAME", "user:ID" */
    const char *key;
    conf_type_t type;
    unsigned flags;                /* CONF_F_* */
    uint32_t min, max;             /* CONF_UINT32 */
    const char *const *choices;    /* CONF_ENUM, NULL-terminated */
    const char *def;               /* default as text; NULL = none */
    size_t offset;
    size_t count_offset;           /* CONF_LIST */
    const char *doc;
} conf_option_t;

/* Sets the field of `o` in `base` from `value`. Paths are resolved against
 * `dir` (absolute). With `append`, a list gets the items added (a value
 * continued on an indented line). Returns 0, or -1 with a message (without
 * file or key) in msg. The previous value is freed. */
int conf__set(const conf_option_t *o, void *base, const char *value, const char *dir, bool append,
              char *msg, size_t msglen);

/* Frees the field of `o` in `base` and clears it. */
void conf__clear(const conf_option_t *o, void *base);

/* Frees every field of every row of `tab` (n rows) in `base`. */
void conf__clear_all(const conf_option_t *tab, size_t n, void *base);

/* Writes the table rows of `tab` for the reference. */
void conf__write_rows(FILE *out, const conf_option_t *tab, size_t n);

/* Finds the row for (section class, key); NULL if none. */
const conf_option_t *conf__find(const conf_option_t *tab, size_t n, const char *section,
                                const char *key);

/* 1 if s is a name: 1..CONF_MAX_NAME of [A-Za-z0-9_-] (plus '.' when `dot`). */
bool conf__is_name(const char *s, bool dot);

/* "dir/rel" made absolute and normalised lexically ("." and ".." removed);
 * hub-allocated, NULL when out of memory. */
char *conf__resolve(const char *dir, const char *rel);

/* The absolute directory of `path` (which must exist), hub-allocated, or
 * NULL with errno set. */
char *conf__dir_of(const char *path);

/* `path` relative to the current directory when it lies under it (for
 * messages), else `path`; hub-allocated. */
char *conf__display(const char *path);

/* Appends a copy of s to a string array unless it is already there. -1 when
 * out of memory. */
int conf__add_unique(char ***arr, size_t *n, const char *s);

/* Index of s in arr, or -1. */
int conf__index(char *const *arr, size_t n, const char *s);

/* -------------------------------------------------------------- INI files */

typedef struct conf_ini conf_ini_t;

/* Callbacks of conf__parse_ini; both return 0, or -1 with a message in msg.
 * `line` is the physical line (1-based) of the section header or key. */
typedef int (*conf_section_cb)(void *ctx, const char *section, int line, char *msg, size_t msglen);
typedef int (*conf_key_cb)(void *ctx, const char *section, const char *key, const char *value,
                           int line, bool continuation, char *msg, size_t msglen);

/* Parses the INI file at `path` with libinih. On the first error writes
 * "<display>:<line>: [section] key: message" (or the shorter forms for
 * section and syntax errors) to err and returns -1; later errors are not
 * reported. Returns -2 if the file cannot be opened (message written).
 * Lines longer than libinih's buffer are errors, never silently split. */
int conf__parse_ini(const char *path, const char *display, conf_section_cb on_section,
                    conf_key_cb on_key, void *ctx, char *err, size_t errlen);

/* -------------------------------------------------------------- users file */

/* Loads the users file `path` (absolute) into cfg->users, checking roles,
 * providers and boroughs against cfg (boroughs and providers are already
 * loaded), then adds every user's skills to cfg->skills. Returns 0 or -1
 * with a message naming the file and line. */
int conf__load_users(hub_config_t *cfg, const char *path, char *err, size_t errlen);

void conf__free_user(hub_user_t *u);

/* The users-file option rows, for the reference. */
extern const conf_option_t conf__user_options[];
extern const size_t conf__n_user_options;

#endif
