/* slm.h: the public interface of libslm — one header for the whole library.
 *
 * Layers, top to bottom (a layer calls only those below it):
 *   train · generate · eval          stages of the lifecycle
 *   model · tokenizer · compress     the transformer, its KV cache; BPE and SentencePiece;
 *                                    quantizing model files
 *   kernels · quant                  matrix products (BLAS, quantized), fused ops; block formats
 *   gguf                             the file format
 *   core                             errors, files, threads, random numbers, time
 * Build with -I<slm>/include -I<slm>/src and link build/libslm.a with OpenBLAS and PCRE2.
 */
#ifndef SLM_H
#define SLM_H

#include "compress/prune.h"
#include "compress/quantize.h"
#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/timer.h"
#include "data/prepare.h"
#include "eval/classify_metrics.h"
#include "eval/energy.h"
#include "eval/latency.h"
#include "eval/perplexity.h"
#include "eval/report.h"
#include "generate/generate.h"
#include "generate/sampler.h"
#include "gguf/gguf.h"
#include "kernels/blas_threads.h"
#include "model/forward.h"
#include "model/model.h"
#include "quant/quant.h"
#include "task/classifier.h"
#include "task/finetune.h"
#include "task/lora.h"
#include "task/sft.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/optimizer.h"
#include "train/token_data.h"
#include "train/trainer.h"

#endif
