/* nhs_number.h -- NHS number validation and display (PURE: no I/O, no
 * allocation).
 *
 * An NHS number is 10 digits. The tenth is a modulus-11 check digit: weight
 * digits 1..9 by 10..2, sum, take the remainder mod 11, subtract it from 11;
 * 11 means 0 and 10 means no valid number has those nine digits. Numbers
 * 999 000 0000 - 999 999 9999 are never issued and are used for test data.
 */
#ifndef MHTAS_CACHE_NHS_NUMBER_H
#define MHTAS_CACHE_NHS_NUMBER_H

#include <stddef.h>

#define NHS_NUMBER_LEN 10

/* Validates `in` and writes its 10 digits, NUL-terminated, to out[11].
 * Spaces and hyphens between digits are ignored ("943 476 5919" is fine).
 * Returns NULL if valid, or a static reason suitable for a user:
 *   "NHS number is missing", "NHS number must be 10 digits",
 *   "check digit is wrong", "NHS number has no valid check digit".
 * `out` is written only when the number is valid. */
const char *nhs_number_validate(const char *in, char out[NHS_NUMBER_LEN + 1]);

/* The check digit for the first nine digits of `digits9` (ASCII '0'..'9'),
 * 0..9, or -1 when the remainder gives 10 (no valid number). */
int nhs_number_check_digit(const char *digits9);

/* Writes "999 123 4560" (12 characters + NUL) for a valid 10-digit number to
 * out[13]. Returns 0, or -1 (and an empty string) if `digits` is not 10
 * digits. */
int nhs_number_format(const char *digits, char out[13]);

/* 1 when a valid number lies in the never-issued test range 999xxxxxxx. */
int nhs_number_is_test_range(const char *digits);

#endif
