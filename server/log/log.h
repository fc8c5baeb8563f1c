/* log.h -- one line per event, key=value, to stderr (after redis serverLog).
 *
 * The level is checked before the arguments are evaluated, so a debug line
 * on the hot path costs one comparison when debug is off. Lines look like
 *   2026-11-23T09:41:07.123Z level=info module=h2 event=conn_open peer=127.0.0.1:50514
 * NEVER log health data: no names, dates of birth, concerns, message text or
 * care-summary content. Log ids (incident, user, connection) instead.
 */
#ifndef MHTAS_LOG_H
#define MHTAS_LOG_H

enum { HUB_LOG_ERROR = 0, HUB_LOG_WARN, HUB_LOG_INFO, HUB_LOG_DEBUG, HUB_LOG_TRACE };

extern int hub_log_level;

/* Parses "error", "warn", "info", "debug", "trace"; -1 if unknown. */
int hub_log_level_parse(const char *s);

#define hub_log(level, module, ...)                                  \
    do {                                                             \
        if ((level) <= hub_log_level)                                \
            hub_log_write((level), (module), __VA_ARGS__);           \
    } while (0)

/* fmt continues the key=value list, e.g. "event=listen port=%d". */
void hub_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
