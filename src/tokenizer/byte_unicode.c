/* byte_unicode.c: GPT-2's byte <-> unicode mapping, as pure functions (no tables to initialise,
 * so nothing process-wide and mutable).
 *
 * GPT-2 stores byte-level tokens as text: each byte becomes one printable code point so that a
 * vocabulary file never holds raw control bytes or spaces. The 188 bytes that are printable
 * Latin-1 ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68
 * (0x00..0x20, 0x7F..0xA0, 0xAD) take U+0100.. U+0143 in byte order — so a space is U+0120 'Ġ'
 * and a newline U+010A 'Ċ'. GGUF's tokenizer.ggml.tokens and .merges are in this form.
 */
#include "tokenizer/tokenizer_internal.h"

static int printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t slm_bu_byte_to_cp(uint8_t b) {
    if (printable(b)) return b;
    /* rank of b among the 68 non-printable bytes: 0x00..0x20 are 0..32, 0x7F..0xA0 are
     * 33..66, 0xAD is 67 */
    unsigned rank = b <= 0x20 ? b : b <= 0xA0 ? 33u + (b - 0x7Fu) : 67u;
    return 0x100u + rank;
}

int slm_bu_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return printable(cp) ? (int)cp : -1;
    if (cp > 0x143) return -1;
    unsigned rank = cp - 0x100;
    if (rank <= 32) return (int)rank;
    if (rank <= 66) return (int)(0x7F + (rank - 33));
    return 0xAD;
}

size_t slm_bu_encode_byte(uint8_t b, char out[2]) {
    uint32_t cp = slm_bu_byte_to_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

size_t slm_bu_encode(const char *raw, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += slm_bu_encode_byte((uint8_t)raw[i], out + k);
    return k;
}

long slm_bu_decode(const char *text, size_t n, char *out) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        if (s[i] < 0x80) {
            cp = s[i++];
        } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
            if (cp < 0x80) return -1; /* overlong */
            i += 2;
        } else {
            return -1; /* 3- and 4-byte sequences are all outside the mapping */
        }
        int b = slm_bu_cp_to_byte(cp);
        if (b < 0) return -1;
        out[k++] = (char)b;
    }
    return (long)k;
}
