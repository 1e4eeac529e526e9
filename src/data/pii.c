/* pii.c: the email, phone and card scanners (see pii.h). Each scanner is tried at a token start
 * and returns the length it matched (0 for none); the longest rule wins in the order card, email,
 * phone. */
#include "data/pii.h"

#include <stdlib.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(char c) { return is_digit(c) || is_alpha(c); }
/* a character that may not touch a number on either side (so "A1234..." or "12.5" do not match) */
static int glues_number(char c) { return is_alnum(c) || c == '_' || c == '+' || c == '$' || c == '/'; }

int slm_pii_luhn(const char *d, size_t n) {
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i & 1) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}

/* after-end check: the match must not continue into a word or a number ("1.5", "1,000") */
static int ends_clean(const char *s, size_t k) {
    char c = s[k];
    if (is_alnum(c) || c == '_' || c == '@') return 0;
    if ((c == '.' || c == ',' || c == '-' || c == '/') && is_digit(s[k + 1])) return 0;
    return 1;
}

/* The longest run of 13-19 digits, ending at a group boundary, that passes Luhn (so a card number
 * followed by another number, "4111... 555", still matches up to its own end). */
static size_t match_card(const char *s) {
    char digits[20];
    size_t n = 0, k = 0, end_k[20] = {0};
    while (is_digit(s[k]) && n < 19) {
        digits[n++] = s[k++];
        if (!is_digit(s[k])) end_k[n] = k; /* a group ends here */
        if ((s[k] == ' ' || s[k] == '-') && is_digit(s[k + 1])) k++;
    }
    for (size_t m = n; m >= 13; m--)
        if (end_k[m] && ends_clean(s, end_k[m]) && slm_pii_luhn(digits, m)) return end_k[m];
    return 0;
}

static int email_local(char c) { return is_alnum(c) || (c && strchr("._%+-'", c)); }

/* s points at '@': the length of '@' plus a dotted domain with an alphabetic top level */
static size_t match_email_domain(const char *s) {
    size_t k = 1, labels = 0, label_len = 0, last_start = 1;
    for (;;) {
        char c = s[k];
        if (is_alnum(c) || (c == '-' && label_len > 0)) {
            label_len++;
            k++;
        } else if (c == '.' && label_len > 0 && is_alnum(s[k + 1])) {
            labels++;
            label_len = 0;
            k++;
            last_start = k;
        } else break;
    }
    if (labels < 1 || label_len < 2) return 0;
    for (size_t i = last_start; i < k; i++)
        if (!is_alpha(s[i])) return 0; /* the top-level domain is letters */
    return k;
}

static size_t match_phone_intl(const char *s) {
    if (s[0] != '+' || !is_digit(s[1])) return 0;
    size_t k = 1, n = 0;
    for (;;) {
        if (is_digit(s[k])) {
            n++;
            k++;
        } else if ((s[k] == ' ' || s[k] == '-' || s[k] == '.') && (is_digit(s[k + 1]) || s[k + 1] == '(')) k++;
        else if (s[k] == '(' && is_digit(s[k + 1])) {
            size_t j = k + 1;
            while (is_digit(s[j])) j++;
            if (s[j] != ')' || j - k - 1 > 4) break;
            n += j - k - 1;
            k = j + 1;
            if (s[k] == ' ' && is_digit(s[k + 1])) k++;
        } else break;
        if (n > 15) return 0;
    }
    if (n < 8 || !ends_clean(s, k)) return 0;
    return k;
}

static size_t digits_at(const char *s, size_t k, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[k + i])) return 0;
    return 1;
}

static size_t match_phone_us(const char *s) {
    size_t k = 0;
    if (s[0] == '+' && s[1] == '1' && (s[2] == ' ' || s[2] == '-' || s[2] == '.' || s[2] == '(')) k = s[2] == '(' ? 2 : 3;
    else if (s[0] == '1' && (s[1] == ' ' || s[1] == '-' || s[1] == '.') && (is_digit(s[2]) || s[2] == '(')) k = 2;
    if (s[k] == '(') {
        if (!digits_at(s, k + 1, 3) || s[k + 4] != ')') return 0;
        k += 5;
        if (s[k] == ' ') k++;
        if (!digits_at(s, k, 3)) return 0;
        k += 3;
        if (s[k] != '-' && s[k] != '.' && s[k] != ' ') return 0;
        k++;
    } else {
        if (!digits_at(s, k, 3)) return 0;
        k += 3;
        char sep = s[k];
        if (sep != '-' && sep != '.' && sep != ' ') return 0;
        k++;
        if (!digits_at(s, k, 3)) return 0;
        k += 3;
        if (s[k] != sep) return 0; /* the same separator twice: 555-123-4567, not 555-123 4567 */
        k++;
    }
    if (!digits_at(s, k, 4)) return 0;
    k += 4;
    if (!ends_clean(s, k)) return 0;
    return k;
}

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) return 0;
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 1;
}

char *slm_pii_scrub(const char *s, slm_pii_counts *counts) {
    size_t len = strlen(s);
    sbuf b = {0};
    if (!sb_put(&b, "", 0)) return NULL;
    size_t i = 0, copied = 0; /* s[copied..i) is pending plain text */
    while (i < len) {
        char prev = i ? s[i - 1] : ' ';
        size_t m = 0;
        const char *tag = NULL;
        long *cnt = NULL;
        if (!glues_number(prev) && prev != '.' && prev != ',' && prev != '-' && (is_digit(s[i]) || s[i] == '+' || s[i] == '(')) {
            if ((m = match_card(s + i))) tag = "[CARD]", cnt = &counts->card;
            else if ((m = match_phone_intl(s + i)) || (m = match_phone_us(s + i))) tag = "[PHONE]", cnt = &counts->phone;
        }
        if (!m && s[i] == '@' && i > 0 && email_local(prev)) {
            size_t start = i;
            while (start > copied && email_local(s[start - 1])) start--;
            while (start < i && !is_alnum(s[start])) start++; /* no leading dots or quotes */
            size_t dm = start < i ? match_email_domain(s + i) : 0;
            if (dm) {
                if (!sb_put(&b, s + copied, start - copied) || !sb_put(&b, "[EMAIL]", 7)) goto oom;
                counts->email++;
                i += dm;
                copied = i;
                continue;
            }
        }
        if (m) {
            if (!sb_put(&b, s + copied, i - copied) || !sb_put(&b, tag, strlen(tag))) goto oom;
            (*cnt)++;
            i += m;
            copied = i;
            continue;
        }
        i++;
    }
    if (!sb_put(&b, s + copied, len - copied)) goto oom;
    return b.buf;
oom:
    free(b.buf);
    return NULL;
}
