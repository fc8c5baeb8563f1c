/* gen_people.c -- bin/mhtas-gen-people: deterministic synthetic people.
 *
 *   mhtas-gen-people --count N [--seed S] [--as-at 2026-11-01T00:00:00Z]
 *
 * Writes N import records (docs/CACHE.md "Import format") as NDJSON on
 * stdout. The same seed gives the same bytes on every machine, and person i
 * does not depend on N (a smaller count is a prefix of a larger one).
 * Everything is synthetic: NHS numbers only in the never-issued 999 range
 * (valid check digits, all distinct), telephone numbers in Ofcom's drama
 * range (0161 496 0xxx), names from common UK name lists, the 10 Greater
 * Manchester boroughs with their postcode districts and NHS trusts. "As at"
 * times are spread over the 400 days before --as-at, so some parts are stale.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cache/care_search.h"
#include "cache/nhs_number.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const FAMILY[] = {
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Khan", "Ahmed", "Hussain", "Ali", "Patel", "Begum", "Shah", "Iqbal",
    "Murphy", "Kelly", "O'Brien", "Nowak", "Kowalski", "Okafor", "Adeyemi", "Mensah", "Nguyen",
    "Chen", "Singh", "Kaur", "Lee", "Harris", "Martin", "Thomas", "Hughes", "Edwards", "Lewis",
    "Turner", "Hill", "Moore", "Cooper", "Ward", "Morris", "King", "Baker", "Holt", "Ashworth",
    "Greenwood", "Butterworth", "Schofield", "Lord", "Kershaw", "Hargreaves", "Ogden",
    "Whitehead", "Barlow", "Fitzgerald", "Smyth", "Thomson", "Hayes", "Byrne", "McDonald",
    "Campbell", "Stewart", "Fletcher", "Pilkington", "Entwistle", "Heywood", "Crompton", "Rahman",
};
static const char *const GIVEN_F[] = {
    "Ann", "Anne", "Annie", "Sarah", "Emma", "Olivia", "Amelia", "Jessica", "Laura", "Rachel",
    "Hannah", "Chloe", "Sophie", "Grace", "Megan", "Lucy", "Aisha", "Fatima", "Ayesha", "Zainab",
    "Maria", "Agnieszka", "Chiamaka", "Abena", "Mei", "Priya", "Siobhan", "Niamh", "Karen",
    "Julie", "Susan", "Margaret", "Jean", "Joan", "Michelle", "Nicola", "Kirsty", "Zoë", "Leah",
};
static const char *const GIVEN_M[] = {
    "John", "Jon", "David", "Michael", "James", "Robert", "Rupert", "Paul", "Mark", "Daniel",
    "Thomas", "Jack", "Harry", "Oliver", "George", "Liam", "Connor", "Mohammed", "Muhammad",
    "Imran", "Bilal", "Tariq", "Piotr", "Tomasz", "Chinedu", "Kwame", "Wei", "Arjun", "Sean",
    "Patrick", "Kevin", "Gary", "Stephen", "Steven", "Craig", "Dean", "Lee", "Ryan", "Kieran",
};
static const char *const STREETS[] = {
    "Oak Road", "Chorley New Road", "Bury Old Road", "Manchester Road", "Church Street",
    "Victoria Avenue", "Park Lane", "Mill Street", "Station Road", "Princess Road",
    "Wellington Street", "Albert Road", "Queens Road", "Market Street", "Moss Lane",
    "Cross Street", "Bolton Road", "Rochdale Road", "Oldham Road", "Ashton Old Road",
};

typedef struct {
    const char *borough, *trust, *hospital, *outward[6];
} borough_t;

static const borough_t BOROUGHS[10] = {
    {"Bolton", "Greater Manchester Mental Health NHS FT", "Royal Bolton Hospital",
     {"BL1", "BL2", "BL3", "BL4", "BL5", "BL6"}},
    {"Bury", "Pennine Care NHS FT", "Fairfield General Hospital", {"BL8", "BL9", "M25", "M26", "BL0", "M45"}},
    {"Manchester", "Greater Manchester Mental Health NHS FT", "North Manchester General Hospital",
     {"M4", "M8", "M9", "M13", "M14", "M20"}},
    {"Oldham", "Pennine Care NHS FT", "Royal Oldham Hospital", {"OL1", "OL4", "OL8", "OL9", "OL2", "OL3"}},
    {"Rochdale", "Pennine Care NHS FT", "Birch Hill Hospital", {"OL11", "OL12", "OL16", "OL10", "OL15", "M24"}},
    {"Salford", "Greater Manchester Mental Health NHS FT", "Meadowbrook Unit, Salford",
     {"M5", "M6", "M7", "M27", "M28", "M30"}},
    {"Stockport", "Pennine Care NHS FT", "Stepping Hill Hospital", {"SK1", "SK2", "SK3", "SK4", "SK5", "SK7"}},
    {"Tameside", "Pennine Care NHS FT", "Tameside General Hospital", {"OL6", "OL7", "SK14", "SK15", "SK16", "M34"}},
    {"Trafford", "Greater Manchester Mental Health NHS FT", "Moorside Unit, Trafford General",
     {"M32", "M33", "M41", "WA14", "WA15", "M31"}},
    {"Wigan", "Greater Manchester Mental Health NHS FT", "Atherleigh Park, Leigh",
     {"WN1", "WN2", "WN3", "WN5", "WN6", "WN7"}},
};

typedef struct {
    const char *code, *display;
} dx_t;

static const dx_t DX[] = {
    {"58214004", "Schizophrenia"},
    {"13746004", "Bipolar disorder"},
    {"35489007", "Depressive disorder"},
    {"66344007", "Recurrent major depressive episodes"},
    {"20010003", "Borderline personality disorder"},
    {"21897009", "Generalized anxiety disorder"},
    {"47505003", "Posttraumatic stress disorder"},
    {"68890003", "Schizoaffective disorder"},
    {"69322001", "Psychotic disorder"},
    {"35919005", "Pervasive developmental disorder (autism)"},
    {"7200002", "Alcoholism"},
    {"56882008", "Anorexia nervosa"},
};

static const char *const WARNING[] = {
    "Stops sleeping and paces at night", "Stops taking medication", "Withdraws from family",
    "Talks about being followed", "Increased alcohol use", "Gives away belongings",
    "Hears voices telling them to harm themselves", "Stops eating", "Becomes irritable and loud",
};
static const char *const HELPS[] = {
    "Calm voice, one person speaking", "Being offered a hot drink", "Speaking to their sister",
    "Time and space to talk", "Being told what will happen next", "Music through headphones",
    "Contact with the care coordinator", "A quiet room",
};
static const char *const AVOID[] = {
    "Physical restraint unless essential", "Raised voices", "Crowds and bright lights",
    "Being touched without warning", "Several officers at once", "Mentioning their ex-partner",
};
static const char *const FLAG_DETAIL[5][2] = {
    {"History of overdose when distressed", "Self-harm by cutting; last episode recent"},
    {"Verbal aggression when unwell", "Assault on staff during previous admission"},
    {"Has carried a knife when paranoid", "Kitchen knives removed from home by family"},
    {"Children in the household", "Adult safeguarding concern: financial exploitation"},
    {"Type 1 diabetes", "Epilepsy: may fit if medication missed"},
};
static const char *const FLAG_CODE[5] = {"self-harm", "violence", "weapons", "safeguarding",
                                         "physical-health"};
static const char *const LEVEL[3] = {"low", "medium", "high"};
static const char *const CLASS[5] = {"community", "crisis-team", "admission", "emergency", "s136"};
static const char *const ROLES[] = {"Community psychiatric nurse", "Social worker",
                                    "Occupational therapist"};
static const char *const TEAM_PART[] = {"North", "South", "East", "West", "Central"};
static const char *const SOURCES[] = {"RiO", "PARIS", "EMIS Web", "SystmOne"};

/* splitmix64: tiny, good enough, identical everywhere. */
typedef struct {
    uint64_t s;
} rng_t;

static uint64_t next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rnd(rng_t *r, unsigned n)
{
    return (unsigned)(next(r) % n);
}

static int chance(rng_t *r, unsigned pct)
{
    return rnd(r, 100) < pct;
}

#define PICK(r, a) ((a)[rnd((r), (unsigned)N(a))])

static void iso(int64_t ms, char out[32])
{
    int64_t days = ms / 86400000;
    int64_t rem = ms % 86400000;
    char d[11];
    care_format_date((int32_t)days, d);
    snprintf(out, 32, "%sT%02d:%02d:%02dZ", d, (int)(rem / 3600000), (int)(rem / 60000 % 60),
             (int)(rem / 1000 % 60));
}

static json_t *meta_part(rng_t *r, int64_t ref_ms, const char *source)
{
    char at[32];
    int64_t back = (int64_t)rnd(r, 400 * 24) * 3600000;
    iso(ref_ms - back, at);
    return json_pack("{s:s, s:s}", "source", source, "asAt", at);
}

static void phone(rng_t *r, char out[16])
{
    snprintf(out, 16, "0161 496 0%03u", rnd(r, 1000));
}

static json_t *person_contact(rng_t *r, const char *role)
{
    char name[80], ph[16];
    int female = chance(r, 50);
    snprintf(name, sizeof name, "%s %s", female ? PICK(r, GIVEN_F) : PICK(r, GIVEN_M),
             PICK(r, FAMILY));
    phone(r, ph);
    return json_pack("{s:s, s:s, s:s}", "name", name, "role", role, "phone", ph);
}

static void date_back(rng_t *r, int32_t ref_day, unsigned max_days, char out[11])
{
    care_format_date(ref_day - (int32_t)rnd(r, max_days), out);
}

static json_t *person(uint64_t seed, unsigned long i, const char *nhs, int64_t ref_ms)
{
    rng_t r = {seed * 0x100000001B3ull ^ (i + 1) * 0x9E3779B97F4A7C15ull};
    int32_t ref_day = (int32_t)(ref_ms / 86400000);
    const borough_t *b = &BOROUGHS[rnd(&r, 10)];
    const char *source = PICK(&r, SOURCES);
    char src[64];
    snprintf(src, sizeof src, "%s (%s)", source,
             strstr(b->trust, "Pennine") ? "Pennine Care" : "GMMH");
    int female = chance(&r, 50);
    const char *family = PICK(&r, FAMILY);
    json_t *given = json_array();
    json_array_append_new(given, json_string(female ? PICK(&r, GIVEN_F) : PICK(&r, GIVEN_M)));
    if (chance(&r, 30))
        json_array_append_new(given, json_string(female ? PICK(&r, GIVEN_F) : PICK(&r, GIVEN_M)));

    /* Ages 16..85 at the reference date. */
    char dob[11];
    care_format_date(ref_day - (int32_t)(16 * 365 + rnd(&r, 70 * 365)), dob);

    char pc[10], line1[64], ph[16];
    const char *outward = b->outward[rnd(&r, 6)];
    static const char letters[] = "ABDEFGHJLNPQRSTUWXYZ";
    snprintf(pc, sizeof pc, "%s %u%c%c", outward, rnd(&r, 10), letters[rnd(&r, 20)],
             letters[rnd(&r, 20)]);
    snprintf(line1, sizeof line1, "%u %s", 1 + rnd(&r, 180), PICK(&r, STREETS));
    phone(&r, ph);

    json_t *names = json_pack("[{s:s, s:s, s:o}]", "use", "official", "family", family, "given",
                              given);
    if (chance(&r, 8))
        json_array_append_new(names, json_pack("{s:s, s:s, s:[s]}", "use", "old", "family",
                                               PICK(&r, FAMILY), "given",
                                               json_string_value(json_array_get(given, 0))));
    char ods[8], gpname[80], gpph[16];
    snprintf(ods, sizeof ods, "P8%04u", rnd(&r, 10000));
    snprintf(gpname, sizeof gpname, "%s Medical Centre, %s", PICK(&r, STREETS), b->borough);
    phone(&r, gpph);
    json_t *patient = meta_part(&r, ref_ms, "NHS Spine (PDS)");
    json_object_set_new(patient, "name", names);
    json_object_set_new(patient, "birthDate", json_string(dob));
    json_object_set_new(patient, "gender", json_string(female ? "female" : "male"));
    json_object_set_new(patient, "address",
                        json_pack("{s:[s], s:s, s:s, s:s}", "line", line1, "city",
                                  strcmp(b->borough, "Manchester") == 0 ? "Manchester" : b->borough,
                                  "district", b->borough, "postalCode", pc));
    json_object_set_new(patient, "generalPractitioner",
                        json_pack("{s:s, s:s, s:s}", "odsCode", ods, "display", gpname, "phone", gpph));
    json_object_set_new(patient, "phone", json_string(ph));

    json_t *doc = json_object();
    json_object_set_new(doc, "nhsNumber", json_string(nhs));
    json_object_set_new(doc, "restricted", json_boolean(chance(&r, 3)));
    json_object_set_new(doc, "patient", patient);

    if (chance(&r, 90)) {
        json_t *l = meta_part(&r, ref_ms, src);
        unsigned k = rnd(&r, 100);
        char start[11], end[11];
        date_back(&r, ref_day, 180, start);
        if (k < 70) {
            json_object_set_new(l, "status", json_string("informal"));
        } else if (k < 85) {
            json_object_set_new(l, "status", json_string(k < 78 ? "section" : "awol"));
            json_object_set_new(l, "section", json_string(k < 74 ? "3" : "2"));
        } else {
            json_object_set_new(l, "status", json_string("cto"));
        }
        if (k >= 70) {
            care_format_date(ref_day + 30 + (int32_t)rnd(&r, 150), end);
            json_object_set_new(l, "start", json_string(start));
            json_object_set_new(l, "end", json_string(end));
            char rc[80];
            snprintf(rc, sizeof rc, "Dr %s", PICK(&r, FAMILY));
            json_object_set_new(l, "responsibleClinician", json_string(rc));
            json_object_set_new(l, "hospital", json_string(b->hospital));
        }
        json_object_set_new(doc, "legalStatus", l);
    }
    if (chance(&r, 95)) {
        json_t *c = meta_part(&r, ref_ms, src);
        json_t *items = json_array();
        unsigned n = 1 + rnd(&r, 2);
        for (unsigned k = 0; k < n; k++) {
            const dx_t *d = &DX[rnd(&r, N(DX))];
            char onset[11];
            date_back(&r, ref_day, 20 * 365, onset);
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s}", "system",
                                                   "http://snomed.info/sct", "code", d->code,
                                                   "display", d->display, "onset", onset,
                                                   "clinicalStatus", "active"));
        }
        json_object_set_new(c, "items", items);
        json_object_set_new(doc, "conditions", c);
    }
    if (chance(&r, 90)) {
        json_t *t = meta_part(&r, ref_ms, src);
        char team[80], ooh[80], tph[16], oph[16];
        snprintf(team, sizeof team, "%s %s CMHT", b->borough, PICK(&r, TEAM_PART));
        snprintf(ooh, sizeof ooh, "%s crisis line", strstr(b->trust, "Pennine") ? "Pennine Care"
                                                                                : "GMMH");
        phone(&r, tph);
        phone(&r, oph);
        json_t *cc = person_contact(&r, PICK(&r, ROLES));
        json_object_set_new(cc, "team", json_string(team));
        json_object_set_new(t, "careCoordinator", cc);
        json_object_set_new(t, "cmht", json_pack("{s:s, s:s, s:s}", "name", team, "phone", tph,
                                                 "instructions", "Mon-Fri 09:00-17:00"));
        json_object_set_new(t, "outOfHours",
                            json_pack("{s:s, s:s, s:s}", "name", ooh, "phone", oph, "instructions",
                                      "24/7; ask for the home treatment team"));
        json_object_set_new(t, "provider", json_string(b->trust));
        json_object_set_new(doc, "careTeam", t);
    }
    if (chance(&r, 80)) {
        json_t *f = meta_part(&r, ref_ms, src);
        json_t *items = json_array();
        for (unsigned k = 0; k < 5; k++) {
            if (!chance(&r, k == 0 ? 45 : 20))
                continue;
            char rec[11];
            date_back(&r, ref_day, 700, rec);
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s}", "code", FLAG_CODE[k],
                                                   "level", LEVEL[rnd(&r, 3)], "detail",
                                                   FLAG_DETAIL[k][rnd(&r, 2)], "recorded", rec));
        }
        json_object_set_new(f, "items", items);
        json_object_set_new(doc, "flags", f);
    }
    if (chance(&r, 70)) {
        json_t *p = meta_part(&r, ref_ms, src);
        json_t *w = json_array(), *h = json_array(), *a = json_array();
        for (unsigned k = 0, n = 1 + rnd(&r, 3); k < n; k++)
            json_array_append_new(w, json_string(PICK(&r, WARNING)));
        for (unsigned k = 0, n = 1 + rnd(&r, 3); k < n; k++)
            json_array_append_new(h, json_string(PICK(&r, HELPS)));
        for (unsigned k = 0, n = rnd(&r, 3); k < n; k++)
            json_array_append_new(a, json_string(PICK(&r, AVOID)));
        char pos[120], review[11];
        if (chance(&r, 50))
            snprintf(pos, sizeof pos, "Health-based place of safety, %s", b->hospital);
        else
            snprintf(pos, sizeof pos, "Home, with family present");
        care_format_date(ref_day + (int32_t)rnd(&r, 365), review);
        json_object_set_new(p, "warningSigns", w);
        json_object_set_new(p, "whatHelps", h);
        json_object_set_new(p, "whatToAvoid", a);
        json_object_set_new(p, "placeOfSafety", json_string(pos));
        json_object_set_new(p, "contacts", json_pack("[o]", person_contact(&r, chance(&r, 50)
                                                                                 ? "Sister"
                                                                                 : "Mother")));
        if (chance(&r, 40))
            json_object_set_new(p, "advanceStatement",
                                json_string("If I am very unwell I would rather go to hospital "
                                            "voluntarily. Please do not call my employer."));
        json_object_set_new(p, "review", json_string(review));
        json_object_set_new(doc, "carePlan", p);
    }
    if (chance(&r, 75)) {
        json_t *e = meta_part(&r, ref_ms, src);
        json_t *items = json_array();
        for (unsigned k = 0, n = rnd(&r, 5); k < n; k++) {
            char start[11];
            date_back(&r, ref_day, 730, start);
            unsigned cl = rnd(&r, 5);
            json_t *it = json_pack("{s:s, s:s, s:s}", "class", CLASS[cl], "start", start,
                                   "location", cl == 2 ? b->hospital : b->borough);
            if (cl == 2) {
                char end[11];
                int32_t sd;
                care_parse_date(start, &sd);
                care_format_date(sd + 7 + (int32_t)rnd(&r, 60), end);
                json_object_set_new(it, "end", json_string(end));
            }
            json_array_append_new(items, it);
        }
        json_object_set_new(e, "items", items);
        json_object_set_new(doc, "encounters", e);
    }
    return doc;
}

int main(int argc, char **argv)
{
    unsigned long count = 0;
    uint64_t seed = 1;
    int64_t ref_ms;
    const char *as_at = "2026-11-01T00:00:00Z";
    static const struct option opts[] = {{"count", required_argument, 0, 'c'},
                                         {"seed", required_argument, 0, 's'},
                                         {"as-at", required_argument, 0, 'a'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': count = strtoul(optarg, NULL, 10); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'a': as_at = optarg; break;
        default:
            fprintf(stderr, "usage: mhtas-gen-people --count N [--seed S] [--as-at ISO-TIME]\n");
            return 2;
        }
    }
    if (care_parse_datetime_ms(as_at, &ref_ms) != 0 || count > 900000) {
        fprintf(stderr, "mhtas-gen-people: --as-at must be like 2026-11-01T00:00:00Z and "
                        "--count at most 900000\n");
        return 2;
    }
    /* NHS numbers: walk the one million 999xxxxxx prefixes in a seeded
     * order (an affine map modulo 10^6 with a multiplier coprime to 10 is a
     * permutation), skipping those without a valid check digit. */
    uint64_t off = seed % 1000000;
    unsigned long j = 0;
    for (unsigned long i = 0; i < count; i++) {
        char nhs[11];
        for (;;) {
            unsigned long v = (unsigned long)((j++ * 7919 + off) % 1000000);
            snprintf(nhs, sizeof nhs, "999%06lu", v);
            int cd = nhs_number_check_digit(nhs);
            if (cd >= 0) {
                nhs[9] = (char)('0' + cd);
                nhs[10] = '\0';
                break;
            }
        }
        json_t *doc = person(seed, i, nhs, ref_ms);
        char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        if (s == NULL || puts(s) == EOF) {
            free(s);
            json_decref(doc);
            return 1;
        }
        free(s);
        json_decref(doc);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
