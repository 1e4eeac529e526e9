/* vocab_vectors.h: llama.cpp's test-tokenizer-0 vector files (<vocab>.inp and <vocab>.out), read
 * and checked once for the tokenizer tests. */
#ifndef SLM_TESTS_VOCAB_VECTORS_H
#define SLM_TESTS_VOCAB_VECTORS_H

#include <stddef.h>

#include "tokenizer/tokenizer.h"

/* Encodes every input of <vocab>.inp (add_special 0) and compares it with its line of
 * <vocab>.out; each differing vector is listed on stderr and counted in *failed. As llama.cpp's
 * test-tokenizer-0 reads them: inputs end at "\n__ggml_vocab_test__\n" (the newline before the
 * separator is not part of the input); outputs are one line each. Calls each(t, input, len)
 * after every vector (NULL: none). Returns the number of vectors read. */
int tu_vocab_vectors(const slm_tokenizer *t, const char *vocab,
                     void (*each)(const slm_tokenizer *t, const char *text, size_t len),
                     int *failed);

#endif
