/* pbjson.h -- canonical proto3 JSON <-> protobuf-c messages, driven by the
 * protobuf-c descriptors (no per-message code). PURE: no I/O.
 *
 * Mapping (https://protobuf.dev/programming-guides/proto3/#json):
 * lowerCamelCase field names on output (json_name); both the camelCase and
 * the original snake_case name accepted on input; enums as their value names
 * (numbers accepted on input); 64-bit integers as decimal strings (numbers
 * accepted on input); bytes as base64; default values omitted on output;
 * oneofs as their one set field; unknown fields, wrong types, out-of-range
 * numbers, invalid UTF-8 and embedded NULs are errors with the field path.
 */
#ifndef MHTAS_PBJSON_H
#define MHTAS_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Encodes `msg` as compact JSON into a hub_malloc'ed NUL-terminated string
 * (the caller frees it with hub_free). NULL when out of memory. */
char *pbjson_encode(const ProtobufCMessage *msg, size_t *len);

/* Decodes JSON text (need not be NUL-terminated) into a new message of type
 * `desc`, allocated through `alloc` (free it with
 * protobuf_c_message_free_unpacked(msg, alloc)). At most max_depth levels of
 * nesting. On error returns NULL and writes e.g.
 *   "details.priority: unknown enum value \"PRIORITY_HIGH\""
 * into err. */
ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                                ProtobufCAllocator *alloc, int max_depth, char *err, size_t errlen);

#endif
