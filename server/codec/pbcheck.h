/* pbcheck.h -- checks on untrusted protobuf bytes that protobuf-c does not do.
 * PURE: no I/O, no allocation.
 *
 * protobuf-c 1.4 accepts any bytes in a string field and NUL-terminates them,
 * so invalid UTF-8 gets through and an embedded NUL silently truncates the
 * string (INTEGRATION.md). pbcheck_wire() walks the wire format guided by the
 * descriptor, before protobuf_c_message_unpack(), and refuses those strings
 * with the field path; it also bounds the nesting depth and rejects
 * malformed framing early.
 */
#ifndef MHTAS_PBCHECK_H
#define MHTAS_PBCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Returns 0 when every string field (also inside sub-messages, nested at
 * most max_depth levels) is valid UTF-8 without NUL, else -1 with a message
 * such as "details.person.family_name: string is not valid UTF-8" in err. */
int pbcheck_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                 int max_depth, char *err, size_t errlen);

/* Finds the last occurrence of length-delimited field `field_no` at the top
 * level of `data` (e.g. a ClientFrame's request_id after a decode error).
 * Returns 0 and points *out and *out_len into data, or -1. */
int pbcheck_find_bytes(const uint8_t *data, size_t len, uint32_t field_no, const uint8_t **out,
                       size_t *out_len);

/* 1 when s[0..n) is valid UTF-8 with no NUL, else 0. */
int pbcheck_utf8(const uint8_t *s, size_t n);

#endif
