/* nhs_number.c -- see nhs_number.h. Pure: used by the cache, the importer,
 * the generator and the hub's request validation alike. */
#include "cache/nhs_number.h"

#include <string.h>

int nhs_number_check_digit(const char *digits9)
{
    int sum = 0;
    for (int i = 0; i < 9; i++) {
        if (digits9[i] < '0' || digits9[i] > '9')
            return -1;
        sum += (digits9[i] - '0') * (10 - i);
    }
    int check = 11 - sum % 11;
    if (check == 11)
        return 0;
    if (check == 10)
        return -1;
    return check;
}

const char *nhs_number_validate(const char *in, char out[NHS_NUMBER_LEN + 1])
{
    char d[NHS_NUMBER_LEN + 1];
    size_t n = 0;
    int seen = 0;

    if (in == NULL)
        return "NHS number is missing";
    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n == NHS_NUMBER_LEN)
                return "NHS number must be 10 digits";
            d[n++] = *p;
            seen = 1;
        } else if (*p == ' ' || *p == '-') {
            continue;
        } else {
            return "NHS number must be 10 digits";
        }
    }
    if (!seen)
        return "NHS number is missing";
    if (n != NHS_NUMBER_LEN)
        return "NHS number must be 10 digits";
    d[n] = '\0';
    int check = nhs_number_check_digit(d);
    if (check < 0)
        return "NHS number has no valid check digit";
    if (check != d[9] - '0')
        return "check digit is wrong";
    memcpy(out, d, sizeof d);
    return NULL;
}

int nhs_number_format(const char *digits, char out[13])
{
    out[0] = '\0';
    if (digits == NULL || strlen(digits) != NHS_NUMBER_LEN)
        return -1;
    for (int i = 0; i < NHS_NUMBER_LEN; i++)
        if (digits[i] < '0' || digits[i] > '9')
            return -1;
    memcpy(out, digits, 3);
    out[3] = ' ';
    memcpy(out + 4, digits + 3, 3);
    out[7] = ' ';
    memcpy(out + 8, digits + 6, 4);
    out[12] = '\0';
    return 0;
}

int nhs_number_is_test_range(const char *digits)
{
    char d[NHS_NUMBER_LEN + 1];
    return nhs_number_validate(digits, d) == NULL && memcmp(d, "999", 3) == 0;
}
