/* pii.h: scrubbing obvious personal data from text — emails, phone numbers, payment card numbers.
 *
 * Replacements are "[EMAIL]", "[PHONE]" and "[CARD]". Patterns are hand-written scanners, chosen to
 * miss rather than to destroy data: a card is 13-19 digits (single spaces or dashes between
 * groups) that pass the Luhn check; a phone is either international ("+" country code, 8-15
 * digits with space/dash/dot/parenthesis separators) or a North-American shape
 * ((NNN) NNN-NNNN, NNN-NNN-NNNN, NNN.NNN.NNNN, NNN NNN NNNN, optional leading 1 or +1). Plain
 * digit runs, years, dates and amounts are left alone.
 */
#ifndef SLM_DATA_PII_H
#define SLM_DATA_PII_H

#include <stddef.h>

typedef struct {
    long email, phone, card; /* replacements made */
} slm_pii_counts;

/* Returns a scrubbed copy of s (malloc'd, NULL on OOM) and adds the replacements to *counts. */
char *slm_pii_scrub(const char *s, slm_pii_counts *counts);

/* 1 when the n ASCII digits pass the Luhn checksum. */
int slm_pii_luhn(const char *digits, size_t n);

#endif
