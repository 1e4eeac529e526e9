/* clean.h: text normalisation on UTF-8 — the cleaning rules every example goes through.
 *
 * Invalid UTF-8 (stray bytes, overlong forms, surrogates, > U+10FFFF) becomes U+FFFD and is
 * counted. Unicode white space (ASCII, NEL, NBSP, U+1680, U+2000-U+200A, U+2028/9, U+202F,
 * U+205F, U+3000) collapses to one space and is trimmed at both ends; zero-width characters
 * (U+200B, U+FEFF) and control characters are removed. With keep_newlines (prompts, completions,
 * chat turns, where line structure matters) line breaks survive as '\n' (at most two in a row),
 * and spaces around them are trimmed.
 */
#ifndef SLM_DATA_CLEAN_H
#define SLM_DATA_CLEAN_H

#include <stddef.h>

/* Returns the normalised copy of s[0..len) (malloc'd, NUL-terminated; NULL on OOM). *n_chars
 * receives its length in code points, *n_invalid the number of invalid sequences replaced. */
char *slm_clean_text(const char *s, size_t len, int keep_newlines, size_t *n_chars, size_t *n_invalid);

/* Number of code points in valid UTF-8 s. */
size_t slm_utf8_count(const char *s);

/* A case-folded copy for de-duplication keys (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
 * simple folding); malloc'd, NULL on OOM. */
char *slm_clean_casefold(const char *s);

#endif
