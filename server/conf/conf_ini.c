/* conf_ini.c -- libinih, fed through our own line reader.
 *
 * Debian's libinih is built with a fixed 200-byte line buffer and no
 * realloc: a longer line is silently split in two, the tail parsed as a line
 * of its own, and the only sign is a line number in the return value (and
 * only when the tail happens not to parse). So we hand inih the lines
 * ourselves (ini_parse_stream with a reader over getline): a line that would
 * not fit becomes an error naming its real line number, and inih is given a
 * blank line instead, which keeps inih's line count equal to ours. The reader
 * also sees every section header, so unknown, duplicate and empty sections
 * are reported with their line even when no key follows, and it knows the
 * line number of the key the handler is called for (Debian's build does not
 * pass line numbers to handlers).
 *
 * inih's rules that matter here (INI_ALLOW_MULTILINE, inline comments):
 * ';' or '#' starts a comment line; " ;" starts a comment after a value; an
 * indented non-blank line after a key continues that key's value (the
 * handler is called again with the same key).
 */
#include "conf_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "util/alloc.h"

struct conf_ini {
    FILE *fp;
    const char *display;
    conf_section_cb on_section;
    conf_key_cb on_key;
    void *ctx;

    char *buf;           /* getline's buffer (libc-allocated) */
    size_t cap;
    int line;            /* physical line of the last line read */
    bool continuation;   /* that line continues the previous key */
    bool after_key;      /* a key was seen since the last section header (inih's prev_name) */

    int err_line;        /* first error recorded by us; 0 = none */
    char *err;
    size_t errlen;

    char **sections;     /* headers seen, for duplicates */
    int *section_lines;
    size_t n_sections;
};

static void record(conf_ini_t *p, int line, const char *section, const char *key, const char *msg)
{
    if (p->err_line != 0)
        return;
    p->err_line = line;
    if (section != NULL && key != NULL)
        snprintf(p->err, p->errlen, "%s:%d: [%s] %s: %s", p->display, line, section, key, msg);
    else if (section != NULL)
        snprintf(p->err, p->errlen, "%s:%d: [%s]: %s", p->display, line, section, msg);
    else if (key != NULL)
        snprintf(p->err, p->errlen, "%s:%d: %s: %s", p->display, line, key, msg);
    else
        snprintf(p->err, p->errlen, "%s:%d: %s", p->display, line, msg);
}

static int note_section(conf_ini_t *p, const char *name)
{
    for (size_t i = 0; i < p->n_sections; i++)
        if (strcmp(p->sections[i], name) == 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "the section appears twice (first at line %d)", p->section_lines[i]);
            record(p, p->line, name, NULL, msg);
            return -1;
        }
    char **s = hub_realloc(p->sections, (p->n_sections + 1) * sizeof *s);
    if (s != NULL)
        p->sections = s;
    int *l = hub_realloc(p->section_lines, (p->n_sections + 1) * sizeof *l);
    if (l != NULL)
        p->section_lines = l;
    char *copy = hub_strdup(name);
    if (s == NULL || l == NULL || copy == NULL) {
        hub_free(copy);
        record(p, p->line, NULL, NULL, "out of memory");
        return -1;
    }
    p->sections[p->n_sections] = copy;
    p->section_lines[p->n_sections++] = p->line;
    return 0;
}

/* Looks at a line the way inih will, to follow sections and continuations. */
static void inspect(conf_ini_t *p, const char *line)
{
    const char *s = line;
    if (p->line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3; /* a UTF-8 byte-order mark, which inih skips */
    const char *start = s;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\f' || *s == '\v')
        s++;
    p->continuation = false;
    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (p->after_key && s > start) {
        p->continuation = true;
        return;
    }
    if (*s != '[')
        return;
    const char *end = strchr(s + 1, ']');
    if (end == NULL)
        return; /* inih reports "no ']'" through its return value */
    p->after_key = false;
    char name[INI_MAX_LINE];
    size_t len = (size_t)(end - s - 1);
    if (len > CONF_MAX_SECTION) {
        char msg[96];
        snprintf(msg, sizeof msg, "the section name is longer than %d characters", CONF_MAX_SECTION);
        record(p, p->line, NULL, NULL, msg);
        return;
    }
    memcpy(name, s + 1, len);
    name[len] = '\0';
    if (note_section(p, name) != 0)
        return;
    char msg[256];
    if (p->on_section(p->ctx, name, p->line, msg, sizeof msg) != 0)
        record(p, p->line, name, NULL, msg);
}

static char *reader(char *str, int num, void *stream)
{
    conf_ini_t *p = stream;
    ssize_t n = getline(&p->buf, &p->cap, p->fp);
    if (n < 0)
        return NULL;
    p->line++;
    size_t content = (size_t)n;
    while (content > 0 && (p->buf[content - 1] == '\n' || p->buf[content - 1] == '\r'))
        content--;
    /* inih needs room for the text, "\r\n" and the NUL. */
    size_t limit = num > 3 ? (size_t)num - 3 : 0;
    char msg[128];
    if (memchr(p->buf, '\0', (size_t)n) != NULL) {
        record(p, p->line, NULL, NULL, "the line contains a NUL byte");
    } else if (content > limit) {
        snprintf(msg, sizeof msg, "the line is %zu characters long; the limit is %zu", content, limit);
        record(p, p->line, NULL, NULL, msg);
    } else {
        memcpy(str, p->buf, (size_t)n + 1);
        inspect(p, str);
        return str;
    }
    p->continuation = false;
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    conf_ini_t *p = user;
    bool cont = p->continuation;
    p->after_key = true;
    if (p->err_line != 0)
        return 0; /* only the first error is reported; stop applying values */
    char msg[256];
    if (p->on_key(p->ctx, section, name, value ? value : "", p->line, cont, msg, sizeof msg) != 0) {
        record(p, p->line, section[0] ? section : NULL, name, msg);
        return 0;
    }
    return 1;
}

int conf__parse_ini(const char *path, const char *display, conf_section_cb on_section, conf_key_cb on_key,
                    void *ctx, char *err, size_t errlen)
{
    conf_ini_t p;
    memset(&p, 0, sizeof p);
    p.display = display;
    p.on_section = on_section;
    p.on_key = on_key;
    p.ctx = ctx;
    p.err = err;
    p.errlen = errlen;
    p.fp = fopen(path, "r");
    if (p.fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", display, strerror(errno));
        return -2;
    }
    int rc = ini_parse_stream(reader, &p, handler, &p);
    int read_error = ferror(p.fp);
    fclose(p.fp);
    free(p.buf);
    for (size_t i = 0; i < p.n_sections; i++)
        hub_free(p.sections[i]);
    hub_free(p.sections);
    hub_free(p.section_lines);

    if (read_error) {
        snprintf(err, errlen, "%s: read error", display);
        return -1;
    }
    if (rc > 0 && (p.err_line == 0 || rc < p.err_line)) {
        /* inih's own complaint: a line that is neither a section header, a
         * key = value, a comment nor blank. */
        snprintf(err, errlen, "%s:%d: syntax error: expected [section], key = value or a comment", display, rc);
        return -1;
    }
    if (rc == -2 && p.err_line == 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return p.err_line != 0 ? -1 : 0;
}
