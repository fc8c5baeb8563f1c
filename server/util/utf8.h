/* utf8.h -- one strict UTF-8 decoder for every module that checks text.
 *
 * Strict means what RFC 3629 allows and nothing else: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence. The JSON codec, the protobuf string check and the radio relay's
 * splitter all need exactly this, so it lives once, here. */
#ifndef MHTAS_UTIL_UTF8_H
#define MHTAS_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at s (n bytes available, n >= 1): returns its length
 * (1..4) and, when cp is not NULL, stores the code point; returns 0 when the
 * bytes there are not valid UTF-8. A NUL byte is a valid 1-byte sequence. */
size_t hub_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
