/* pbutil.c -- protobuf and formatting helpers for the desk client. */
#include "desk/desk.h"

#include <string.h>

void *pb_dup(const ProtobufCMessage *m)
{
    if (m == NULL)
        return NULL;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = g_malloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    g_free(buf);
    return copy;
}

void pb_free(void *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

const char *pb_enum(const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (ev == NULL)
        return "?";
    size_t n = prefix ? strlen(prefix) : 0;
    return n && strncmp(ev->name, prefix, n) == 0 ? ev->name + n : ev->name;
}

const char *priority_label(int p)
{
    switch (p) {
    case 1: return "P1 Immediate";
    case 2: return "P2 Urgent";
    case 3: return "P3 Standard";
    case 4: return "P4 Routine";
    default: return "P? Unknown";
    }
}

const char *state_label(int s)
{
    return pb_enum(&mhtas__v1__incident_state__descriptor, s, "INCIDENT_STATE_");
}

char *fmt_time(int64_t ms)
{
    if (ms <= 0)
        return g_strdup("--:--:--");
    GDateTime *t = g_date_time_new_from_unix_local(ms / 1000);
    if (t == NULL)
        return g_strdup("?");
    char *s = g_date_time_format(t, "%H:%M:%S");
    g_date_time_unref(t);
    return s;
}

int64_t now_ms(void)
{
    return g_get_real_time() / 1000;
}

char *nhs_format(const char *n)
{
    if (n == NULL || strlen(n) != 10)
        return g_strdup(n ? n : "");
    return g_strdup_printf("%.3s %.3s %.4s", n, n + 3, n + 6);
}
