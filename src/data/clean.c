/* clean.c: UTF-8 decoding, white-space normalisation and simple case folding (see clean.h). */
#include "data/clean.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one code point at s (n bytes left). Returns its length, or 0 for an invalid sequence. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    uint32_t min, c;
    if (b >= 0xC2 && b <= 0xDF) len = 2, c = b & 0x1F, min = 0x80;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, c = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, c = b & 0x07, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

static size_t utf8_encode(uint32_t c, char *o) {
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18);
    o[1] = (char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static int is_space(uint32_t c) {
    return c == ' ' || c == '\t' || c == 0x0B || c == 0x0C || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}
static int is_newline(uint32_t c) { return c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029; }
static int is_dropped(uint32_t c) {
    return (c < 0x20 && !is_newline(c) && c != '\t' && c != 0x0B && c != 0x0C) || c == 0x7F ||
           (c >= 0x80 && c < 0xA0 && c != 0x85) || c == 0x200B || c == 0xFEFF;
}

char *slm_clean_text(const char *s, size_t len, int keep_newlines, size_t *n_chars, size_t *n_invalid) {
    /* U+FFFD (3 bytes) may replace a 1-byte invalid sequence: 3x is the worst case */
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, chars = 0, bad = 0;
    int pend_space = 0, pend_nl = 0; /* pending separators, written before the next visible char */
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_decode(p + i, len - i, &cp);
        if (k == 0) {
            cp = 0xFFFD;
            k = 1;
            bad++;
        }
        if (cp == '\r' && i + 1 < len && p[i + 1] == '\n') k = 2; /* CRLF is one break */
        i += k;
        if (is_newline(cp)) {
            if (keep_newlines) pend_nl++;
            else pend_space = 1;
            continue;
        }
        if (is_space(cp)) {
            pend_space = 1;
            continue;
        }
        if (is_dropped(cp)) continue;
        if (o > 0) {
            if (pend_nl) {
                int nl = pend_nl > 2 ? 2 : pend_nl;
                for (int j = 0; j < nl; j++) out[o++] = '\n', chars++;
            } else if (pend_space) out[o++] = ' ', chars++;
        }
        pend_nl = pend_space = 0;
        o += utf8_encode(cp, out + o);
        chars++;
    }
    out[o] = '\0';
    if (n_chars) *n_chars = chars;
    if (n_invalid) *n_invalid = bad;
    return out;
}

size_t slm_utf8_count(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static uint32_t fold(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0xC0) return c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        /* Latin Extended-A alternates upper/lower, with the parity flipping after U+0138 */
        if (c < 0x138) return c | 1;
        if (c < 0x149) return (c & 1) ? c + 1 : c;
        if (c < 0x178) return c | 1;
        if (c == 0x178) return 0xFF;
        return (c & 1) ? c + 1 : c;
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32; /* Greek */
    if (c >= 0x410 && c <= 0x42F) return c + 32;                /* Cyrillic А-Я */
    if (c >= 0x400 && c <= 0x40F) return c + 80;                /* Cyrillic Ѐ-Џ */
    return c;
}

char *slm_clean_casefold(const char *s) {
    size_t len = strlen(s);
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_decode(p + i, len - i, &cp);
        if (k == 0) {
            out[o++] = (char)p[i++];
            continue;
        }
        i += k;
        o += utf8_encode(fold(cp), out + o);
    }
    out[o] = '\0';
    return out;
}
