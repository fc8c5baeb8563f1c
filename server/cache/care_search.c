/* care_search.c -- see care_search.h. Pure: no I/O, no allocation, no clock.
 *
 * Search follows the NHS patient-search idea: the police give a family name
 * and a date of birth (or a range), perhaps a given name and postcode, and
 * often get one of them slightly wrong. Candidates come from a handful of
 * Redis sets chosen here (care_query_keys); each candidate's compact record is
 * then scored here (care_score) and the results ranked (care_match_cmp). The
 * weights are in one place, below, so the ranking can be explained to a
 * practitioner and tested.
 */
#include "cache/care_search.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ keys */

void care_key_summary(const char *nhs, char out[CARE_KEY_MAX])
{
    snprintf(out, CARE_KEY_MAX, "mhtas:cs:%.10s", nhs);
}

void care_key_person(const char *nhs, char out[CARE_KEY_MAX])
{
    snprintf(out, CARE_KEY_MAX, "mhtas:pm:%.10s", nhs);
}

void care_key_index_of(const char *nhs, char out[CARE_KEY_MAX])
{
    snprintf(out, CARE_KEY_MAX, "mhtas:ixof:%.10s", nhs);
}

static void key_dob(int32_t days, char out[CARE_KEY_MAX])
{
    char d[11];
    care_format_date(days, d);
    snprintf(out, CARE_KEY_MAX, "mhtas:ix:dob:%s", d);
}

static void key_yob(int year, char out[CARE_KEY_MAX])
{
    snprintf(out, CARE_KEY_MAX, "mhtas:ix:yob:%04d", year);
}

static void key_fy(const char *sx, int year, char out[CARE_KEY_MAX])
{
    snprintf(out, CARE_KEY_MAX, "mhtas:ix:fy:%.4s:%04d", sx, year);
}

static int year_of(int32_t days);

int care_person_index_keys(const char *family, const char *dob,
                           char keys[CARE_PERSON_KEYS_MAX][CARE_KEY_MAX])
{
    int32_t days;
    char sx[5];
    int n = 0;

    if (dob == NULL || care_parse_date(dob, &days) != 0)
        return -1;
    key_dob(days, keys[n++]);
    key_yob(year_of(days), keys[n++]);
    if (family && care_soundex(family, sx) == 0)
        key_fy(sx, year_of(days), keys[n++]);
    return n;
}

/* ------------------------------------------------------------ text */

/* U+00C0..U+00FF without their accents; '.' for the non-letters. */
static const char latin1_fold[65] =
    "AAAAAAACEEEEIIII" "DNOOOOO.OUUUUYTS"
    "AAAAAAACEEEEIIII" "DNOOOOO.OUUUUYTY";

size_t care_norm_name(const char *in, char *out, size_t out_len)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)(in ? in : "");

    if (out_len == 0)
        return 0;
    while (*p && n + 1 < out_len) {
        unsigned char c = *p++;
        if (c >= 'a' && c <= 'z') {
            out[n++] = (char)(c - 'a' + 'A');
        } else if (c >= 'A' && c <= 'Z') {
            out[n++] = (char)c;
        } else if ((c == 0xC3) && *p >= 0x80 && *p <= 0xBF) {
            /* U+00C0..U+00FF encoded as C3 80..C3 BF */
            char f = latin1_fold[*p - 0x80];
            p++;
            if (f != '.')
                out[n++] = f;
        }
    }
    out[n] = '\0';
    return n;
}

static char soundex_code(char c)
{
    switch (c) {
    case 'B': case 'F': case 'P': case 'V':
        return '1';
    case 'C': case 'G': case 'J': case 'K': case 'Q': case 'S': case 'X': case 'Z':
        return '2';
    case 'D': case 'T':
        return '3';
    case 'L':
        return '4';
    case 'M': case 'N':
        return '5';
    case 'R':
        return '6';
    case 'H': case 'W':
        return 'h';          /* ignored, and do not separate equal codes */
    default:
        return '0';          /* vowels and Y: separate equal codes */
    }
}

int care_soundex(const char *name, char out[5])
{
    char n[CARE_NAME_MAX];
    size_t len = care_norm_name(name, n, sizeof n);

    out[0] = '\0';
    if (len == 0)
        return -1;
    out[0] = n[0];
    char last = soundex_code(n[0]);
    int k = 1;
    for (size_t i = 1; i < len && k < 4; i++) {
        char c = soundex_code(n[i]);
        if (c == 'h')
            continue;
        if (c != '0' && c != last)
            out[k++] = c;
        last = c;
    }
    while (k < 4)
        out[k++] = '0';
    out[4] = '\0';
    return 0;
}

int care_norm_postcode(const char *in, char norm[9], char outward[5])
{
    size_t n = 0;

    norm[0] = outward[0] = '\0';
    if (in == NULL)
        return -1;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) || n >= 8)
            return -1;
        norm[n++] = c;
    }
    norm[n] = '\0';
    if (n < 2 || n > 7 || !(norm[0] >= 'A' && norm[0] <= 'Z'))
        return -1;
    if (n >= 5) {
        /* full postcode: inward code is digit letter letter */
        const char *in3 = norm + n - 3;
        if (!(in3[0] >= '0' && in3[0] <= '9') || !(in3[1] >= 'A' && in3[1] <= 'Z') ||
            !(in3[2] >= 'A' && in3[2] <= 'Z'))
            return -1;
        memcpy(outward, norm, n - 3);
        outward[n - 3] = '\0';
    } else {
        memcpy(outward, norm, n + 1);
    }
    return 0;
}

/* ------------------------------------------------------------ dates */

/* Howard Hinnant's days_from_civil / civil_from_days. */
static int32_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int year_of(int32_t days)
{
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    return y;
}

static int digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

static int parse_ymd(const char *s, int *y, int *m, int *d)
{
    if (digits(s, 4, y) || s[4] != '-' || digits(s + 5, 2, m) || s[7] != '-' ||
        digits(s + 8, 2, d))
        return -1;
    if (*y < 1880 || *y > 2200 || *m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
        return -1;
    return 0;
}

int care_parse_date(const char *s, int32_t *days)
{
    int y, m, d;
    if (s == NULL || strlen(s) != 10 || parse_ymd(s, &y, &m, &d))
        return -1;
    *days = days_from_civil(y, m, d);
    return 0;
}

void care_format_date(int32_t days, char out[11])
{
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned uy = (unsigned)y % 10000u, um = (unsigned)m % 100u, ud = (unsigned)d % 100u;
    out[0] = (char)('0' + uy / 1000);
    out[1] = (char)('0' + uy / 100 % 10);
    out[2] = (char)('0' + uy / 10 % 10);
    out[3] = (char)('0' + uy % 10);
    out[4] = '-';
    out[5] = (char)('0' + um / 10);
    out[6] = (char)('0' + um % 10);
    out[7] = '-';
    out[8] = (char)('0' + ud / 10);
    out[9] = (char)('0' + ud % 10);
    out[10] = '\0';
}

int care_parse_datetime_ms(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, se, frac = 0, off = 0;
    if (s == NULL || strlen(s) < 20 || parse_ymd(s, &y, &mo, &d) || s[10] != 'T' ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se) || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int nd = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac = frac * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t secs = (int64_t)days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
                   (int64_t)off * 60;
    *ms = secs * 1000 + frac;
    return 0;
}

/* ------------------------------------------------------------ query */

/* Splits "Ann*" into the normalised name and the wildcard flag. A '*'
 * anywhere but the end is refused: only prefix wildcards are indexed by
 * scoring, and "*nn" would be a full scan. */
static const char *parse_name(const char *in, char out[CARE_NAME_MAX], int *wild,
                              size_t min_prefix, const char *what_star)
{
    size_t len = in ? strlen(in) : 0;
    *wild = 0;
    out[0] = '\0';
    if (len == 0)
        return NULL;
    const char *star = strchr(in, '*');
    if (star) {
        if (star != in + len - 1)
            return "a wildcard '*' may only end a name";
        *wild = 1;
        char tmp[CARE_NAME_MAX];
        size_t n = len - 1 < sizeof tmp - 1 ? len - 1 : sizeof tmp - 1;
        memcpy(tmp, in, n);
        tmp[n] = '\0';
        if (care_norm_name(tmp, out, CARE_NAME_MAX) < min_prefix)
            return what_star;
        return NULL;
    }
    care_norm_name(in, out, CARE_NAME_MAX);
    return NULL;
}

const char *care_query_parse(care_query_t *q, const Mhtas__V1__SearchPersonsRequest *req)
{
    const char *err;
    memset(q, 0, sizeof *q);

    if (req->family_name == NULL || req->family_name[0] == '\0')
        return "family name is required";
    if ((err = parse_name(req->family_name, q->family, &q->family_wild, 2,
                          "a wildcard family name needs at least 2 letters before '*'")))
        return err;
    if (q->family[0] == '\0')
        return "family name has no letters";
    if (!q->family_wild)
        care_soundex(q->family, q->family_sx);

    if ((err = parse_name(req->given_name, q->given, &q->given_wild, 1,
                          "a wildcard given name needs at least 1 letter before '*'")))
        return err;
    if (req->given_name && req->given_name[0] && q->given[0] == '\0')
        return "given name has no letters";
    if (q->given[0] && !q->given_wild)
        care_soundex(q->given, q->given_sx);

    int has_dob = req->date_of_birth && req->date_of_birth[0];
    int has_from = req->dob_from && req->dob_from[0];
    int has_to = req->dob_to && req->dob_to[0];
    if (has_dob && (has_from || has_to))
        return "give a date of birth or a date-of-birth range, not both";
    if (has_dob) {
        if (care_parse_date(req->date_of_birth, &q->dob_from))
            return "date of birth is not a valid YYYY-MM-DD date";
        q->dob_to = q->dob_from;
        q->dob_exact = 1;
    } else if (has_from && has_to) {
        if (care_parse_date(req->dob_from, &q->dob_from))
            return "dob_from is not a valid YYYY-MM-DD date";
        if (care_parse_date(req->dob_to, &q->dob_to))
            return "dob_to is not a valid YYYY-MM-DD date";
        if (q->dob_to < q->dob_from)
            return "dob_to is before dob_from";
        int years = year_of(q->dob_to) - year_of(q->dob_from) + 1;
        if (years > 100)
            return "the date-of-birth range may span at most 100 years";
        if (q->family_wild && q->dob_to - q->dob_from > 62 && years > 5)
            return "with a wildcard family name the date-of-birth range may span at most 5 years";
    } else if (has_from || has_to) {
        return "a date-of-birth range needs both dob_from and dob_to";
    } else {
        return "date of birth (or a date-of-birth range) is required";
    }

    if (req->postcode && req->postcode[0] &&
        care_norm_postcode(req->postcode, q->postcode, q->outward))
        return "postcode is not a valid UK postcode or outward code";

    q->exact_only = req->exact_only;
    q->max_results = req->max_results;
    if (q->max_results == 0 || q->max_results > CARE_SEARCH_MAX_RESULTS)
        q->max_results = CARE_SEARCH_MAX_RESULTS;
    return NULL;
}

/* A narrow range (at most 62 days) reads the day sets directly. A wider one
 * reads the family-Soundex-by-year sets (and, for transposed names, the
 * given-name-Soundex-by-year ones), or the year sets when the family name is
 * a wildcard. An exact date also reads the day-and-month-swapped date and the
 * sound-alike sets of that year, so a typo in the date still finds people
 * whose names agree. */
int care_query_keys(const care_query_t *q, char keys[CARE_QUERY_KEYS_MAX][CARE_KEY_MAX])
{
    int n = 0;

    if (q->dob_to - q->dob_from <= 62) {
        for (int32_t d = q->dob_from; d <= q->dob_to && n < CARE_QUERY_KEYS_MAX; d++)
            key_dob(d, keys[n++]);
    } else {
        int y0 = year_of(q->dob_from), y1 = year_of(q->dob_to);
        for (int y = y0; y <= y1 && n < CARE_QUERY_KEYS_MAX; y++) {
            if (q->family_wild) {
                key_yob(y, keys[n++]);
                continue;
            }
            key_fy(q->family_sx, y, keys[n++]);
            if (q->given_sx[0] && strcmp(q->given_sx, q->family_sx) != 0 &&
                n < CARE_QUERY_KEYS_MAX)
                key_fy(q->given_sx, y, keys[n++]);
        }
        return n;
    }
    if (q->dob_exact && !q->exact_only) {
        int y, m, d;
        civil_from_days(q->dob_from, &y, &m, &d);
        if (d <= 12 && d != m)
            key_dob(days_from_civil(y, d, m), keys[n++]);
        if (q->family_sx[0])
            key_fy(q->family_sx, y, keys[n++]);
        if (q->given_sx[0] && strcmp(q->given_sx, q->family_sx) != 0)
            key_fy(q->given_sx, y, keys[n++]);
    }
    return n;
}

/* ------------------------------------------------------------ scoring */

/* The weights. A full match of everything asked scores 100. */
enum {
    W_FAMILY = 40, W_FAMILY_WILD = 36, W_FAMILY_SX = 24,
    W_GIVEN = 20, W_GIVEN_WILD = 18, W_GIVEN_SX = 12, W_GIVEN_INITIAL = 6,
    W_DOB = 30, W_DOB_SWAPPED = 20, W_DOB_YEAR = 8,
    W_POSTCODE = 10, W_POSTCODE_DISTRICT = 6,
};

#define BIT(r) (1u << MHTAS__V1__MATCH_REASON__MATCH_REASON_##r)

typedef enum { NM_NONE, NM_INITIAL, NM_SOUNDEX, NM_WILD, NM_EXACT } name_match_t;

/* How a query name (normalised, maybe wild, with its Soundex) agrees with
 * one candidate name. */
static name_match_t name_match(const char *qn, int wild, const char *qsx, const char *cand)
{
    char cn[CARE_NAME_MAX], csx[5];
    care_norm_name(cand, cn, sizeof cn);
    if (cn[0] == '\0' || qn[0] == '\0')
        return NM_NONE;
    if (wild)
        return strncmp(cn, qn, strlen(qn)) == 0 ? NM_WILD : NM_NONE;
    if (strcmp(cn, qn) == 0)
        return NM_EXACT;
    if (qsx[0] && care_soundex(cn, csx) == 0 && strcmp(csx, qsx) == 0)
        return NM_SOUNDEX;
    if (cn[0] == qn[0])
        return NM_INITIAL;
    return NM_NONE;
}

/* The best agreement of the query name with any of the space-separated given
 * names ("Ann Marie" answers to "Marie"). */
static name_match_t given_match(const char *qn, int wild, const char *qsx, const char *givens)
{
    name_match_t best = NM_NONE;
    const char *p = givens ? givens : "";
    while (*p) {
        while (*p == ' ')
            p++;
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0) {
            char one[CARE_NAME_MAX];
            if (len >= sizeof one)
                len = sizeof one - 1;
            memcpy(one, p, len);
            one[len] = '\0';
            name_match_t m = name_match(qn, wild, qsx, one);
            if (m > best)
                best = m;
        }
        p += len;
    }
    return best;
}

static unsigned family_points(name_match_t m, uint32_t *r)
{
    switch (m) {
    case NM_EXACT: *r |= BIT(FAMILY_EXACT); return W_FAMILY;
    case NM_WILD: *r |= BIT(FAMILY_WILDCARD); return W_FAMILY_WILD;
    case NM_SOUNDEX: *r |= BIT(FAMILY_SOUNDEX); return W_FAMILY_SX;
    default: return 0;   /* an initial alone is no evidence for a family name */
    }
}

static unsigned given_points(name_match_t m, uint32_t *r)
{
    switch (m) {
    case NM_EXACT: *r |= BIT(GIVEN_EXACT); return W_GIVEN;
    case NM_WILD: *r |= BIT(GIVEN_WILDCARD); return W_GIVEN_WILD;
    case NM_SOUNDEX: *r |= BIT(GIVEN_SOUNDEX); return W_GIVEN_SX;
    case NM_INITIAL: *r |= BIT(GIVEN_INITIAL); return W_GIVEN_INITIAL;
    default: return 0;
    }
}

care_score_t care_score(const care_query_t *q, const Mhtas__V1__PersonMatch *c)
{
    care_score_t s = {0, 0, 0};
    unsigned max = W_FAMILY + W_DOB + (q->given[0] ? W_GIVEN : 0) + (q->postcode[0] ? W_POSTCODE : 0);
    unsigned pts = 0, name_pts, dob_pts = 0;
    uint32_t r = 0;

    /* Names, as given. */
    name_match_t fm = name_match(q->family, q->family_wild, q->family_sx, c->family_name);
    name_match_t gm = q->given[0] ? given_match(q->given, q->given_wild, q->given_sx, c->given_names)
                                  : NM_NONE;
    name_pts = family_points(fm, &r);
    unsigned gpts = q->given[0] ? given_points(gm, &r) : 0;

    /* Names transposed: the query's family name is the person's given name
     * and the other way round. Worth 80% of the straight reading; used only
     * when it beats it. */
    if (q->given[0]) {
        uint32_t tr = 0;
        name_match_t tf = given_match(q->family, q->family_wild, q->family_sx, c->given_names);
        name_match_t tg = name_match(q->given, q->given_wild, q->given_sx, c->family_name);
        unsigned tp = family_points(tf, &tr) + given_points(tg, &tr);
        if (tf >= NM_SOUNDEX && tg >= NM_SOUNDEX && tp * 4 / 5 > name_pts + gpts) {
            /* Report what agreed in transposed terms. */
            r = BIT(NAMES_TRANSPOSED) | (tr & (BIT(FAMILY_EXACT) | BIT(FAMILY_WILDCARD) |
                                               BIT(FAMILY_SOUNDEX) | BIT(GIVEN_EXACT) |
                                               BIT(GIVEN_WILDCARD) | BIT(GIVEN_SOUNDEX)));
            name_pts = tp * 4 / 5;
            gpts = 0;
            fm = NM_SOUNDEX;       /* never exact */
            gm = NM_SOUNDEX;
        }
    }
    if (name_pts == 0)
        return s;
    pts += name_pts + gpts;

    /* Date of birth. */
    int32_t dob;
    int dob_ok = c->date_of_birth && care_parse_date(c->date_of_birth, &dob) == 0;
    int dob_exactish = 0;
    if (dob_ok) {
        if (dob >= q->dob_from && dob <= q->dob_to) {
            r |= q->dob_exact ? BIT(DOB_EXACT) : BIT(DOB_IN_RANGE);
            dob_pts = W_DOB;
            dob_exactish = 1;
        } else if (q->dob_exact) {
            int qy, qm, qd, cy, cm, cd;
            civil_from_days(q->dob_from, &qy, &qm, &qd);
            civil_from_days(dob, &cy, &cm, &cd);
            if (qy == cy && qm == cd && qd == cm) {
                r |= BIT(DOB_DAY_MONTH_SWAPPED);
                dob_pts = W_DOB_SWAPPED;
            } else if (qy == cy) {
                r |= BIT(DOB_SAME_YEAR);
                dob_pts = W_DOB_YEAR;
            }
        }
    }
    if (dob_pts == 0)
        return s;
    pts += dob_pts;

    /* Postcode. */
    if (q->postcode[0] && c->postcode) {
        char cn[9], co[5];
        if (care_norm_postcode(c->postcode, cn, co) == 0) {
            int full = strlen(q->postcode) >= 5;
            if (full && strcmp(cn, q->postcode) == 0) {
                r |= BIT(POSTCODE_EXACT);
                pts += W_POSTCODE;
            } else if (strcmp(co, q->outward) == 0) {
                r |= full ? BIT(POSTCODE_DISTRICT) : BIT(POSTCODE_EXACT);
                pts += full ? W_POSTCODE_DISTRICT : W_POSTCODE;
            }
        }
    }

    s.exact = (fm == NM_EXACT || fm == NM_WILD) &&
              (!q->given[0] || gm == NM_EXACT || gm == NM_WILD) && dob_exactish;
    s.reasons = r;
    s.score = (pts * 100 + max / 2) / max;
    if (s.score > 100)
        s.score = 100;
    if (!s.exact && (q->exact_only || s.score < CARE_SEARCH_MIN_SCORE)) {
        s.score = 0;
        s.reasons = 0;
    }
    return s;
}

static int strcmp0(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

int care_match_cmp(const void *pa, const void *pb)
{
    const Mhtas__V1__PersonMatch *a = *(Mhtas__V1__PersonMatch *const *)pa;
    const Mhtas__V1__PersonMatch *b = *(Mhtas__V1__PersonMatch *const *)pb;
    int d;
    if (a->exact != b->exact)
        return a->exact ? -1 : 1;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if ((d = strcmp0(a->family_name, b->family_name)) ||
        (d = strcmp0(a->given_names, b->given_names)) ||
        (d = strcmp0(a->date_of_birth, b->date_of_birth)))
        return d;
    return strcmp0(a->nhs_number, b->nhs_number);
}

size_t care_reasons_unpack(uint32_t bits, Mhtas__V1__MatchReason *out)
{
    size_t n = 0;
    for (unsigned i = 1; i < 32 && n < 16; i++)
        if (bits & (1u << i))
            out[n++] = (Mhtas__V1__MatchReason)i;
    return n;
}

/* ------------------------------------------------------------ view */

static void stale_check(const Mhtas__V1__PartMeta *meta, int present, Mhtas__V1__CarePart part,
                        int64_t now_ms, int64_t max_age_ms, Mhtas__V1__CarePart *out, size_t *n)
{
    if (!present)
        return;
    if (meta == NULL || meta->as_at_ms <= 0 || now_ms - meta->as_at_ms > max_age_ms)
        out[(*n)++] = part;
}

size_t care_stale_parts(const Mhtas__V1__CareSummary *s, int64_t now_ms, int64_t max_age_ms,
                        Mhtas__V1__CarePart out[CARE_PARTS])
{
    size_t n = 0;
    if (max_age_ms <= 0)
        return 0;
#define PART(field, name)                                                                      \
    stale_check(s->field ? s->field->meta : NULL, s->field != NULL,                           \
                MHTAS__V1__CARE_PART__CARE_PART_##name, now_ms, max_age_ms, out, &n)
    PART(identity, IDENTITY);
    PART(legal_status, LEGAL_STATUS);
    PART(diagnoses, DIAGNOSES);
    PART(care_team, CARE_TEAM);
    PART(risks, RISKS);
    PART(crisis_plan, CRISIS_PLAN);
    PART(recent_contacts, RECENT_CONTACTS);
#undef PART
    return n;
}
