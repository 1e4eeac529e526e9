/* test_cli.c: the slm command end to end — each subcommand on real files, --help everywhere,
 * and clear errors with non-zero exit codes for bad arguments and bad files.
 * The binary is $SLM (scripts/run-tests sets it), else build/slm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "slm.h"
#include "util/testutil.h"

static char out[1 << 16];

/* Runs "slm <args>" through the shell with stderr merged; returns the exit status. */
static int slm(const char *args) {
    const char *bin = getenv("SLM");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin && *bin ? bin : "build/slm", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    char sink[4096]; /* drain the rest so the command never sees a closed pipe */
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_help_for_every_command(void **state) {
    (void)state;
    const char *cmds[] = {"data", "info", "tokenizer", "tokenize", "train", "finetune", "classify", "eval",
                          "distill", "prune", "lora",
                          "generate", "quantize", "bench", "perplexity"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        assert_int_equal(slm(a), 0);
        assert_non_null(strstr(out, "usage"));
    }
    assert_int_equal(slm("--help"), 0);
    assert_int_equal(slm("frobnicate"), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
}

static void test_info_on_a_llama_cpp_file(void **state) {
    (void)state;
    assert_int_equal(slm("info data/models/stories260K/stories260K.gguf"), 0);
    assert_non_null(strstr(out, "llama"));
    assert_non_null(strstr(out, "blk.4.ffn_down.weight"));
    assert_non_null(strstr(out, "tokenizer.ggml.tokens"));
    assert_int_not_equal(slm("info /nonexistent.gguf"), 0);
    assert_non_null(strstr(out, "/nonexistent.gguf"));
    assert_int_not_equal(slm("info data/tinyshakespeare/input.txt"), 0); /* not a GGUF */
    assert_non_null(strstr(out, "input.txt"));
}

static void test_train_generate_tokenize_round(void **state) {
    (void)state;
    char a[2048];
    const char *corpus = tu_tmp_path("corpus.txt"), *tok = tu_tmp_path("tok.gguf");
    const char *model = tu_tmp_path("model.gguf"), *log = tu_tmp_path("log.jsonl");
    const char *ckpt = tu_tmp_path("ckpt.gguf");
    snprintf(a, sizeof a, "head -c 30000 data/tinyshakespeare/input.txt > %s", corpus);
    assert_int_equal(system(a), 0);

    snprintf(a, sizeof a, "tokenizer train %s --vocab 320 -o %s", corpus, tok);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "train --data %s --tokenizer %s --preset tiny --steps 6 --batch 2 --seq 32 "
             "--eval-every 3 --eval-windows 2 --log %s --checkpoint %s --checkpoint-every 3 -o %s --threads 2",
             corpus, tok, log, ckpt, model);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "step 6/6"));
    /* the log has one JSON object per step, validation at steps 3 and 6 */
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[512];
    int lines = 0, vals = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        vals += strstr(line, "\"val_loss\"") != NULL;
        assert_non_null(strstr(line, "\"tokens_per_s\""));
    }
    fclose(f);
    assert_int_equal(lines, 6);
    assert_int_equal(vals, 2);

    snprintf(a, sizeof a, "generate %s -p ROMEO: -n 20 --temp 0 --stats", model);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "generated:"));
    snprintf(a, sizeof a, "generate %s -p '' -n 5 --temp 0.8 --seed 3", model);
    assert_int_equal(slm(a), 0);

    snprintf(a, sizeof a, "tokenize %s --file %s", model, corpus);
    assert_int_equal(slm(a), 0);
    assert_true(strlen(out) > 100);

    /* fine-tune from the model, resume from the checkpoint */
    snprintf(a, sizeof a, "train --data %s --init %s --steps 2 --batch 2 --seq 32 -o %s.ft --quiet", corpus, model, model);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "train --data %s --resume %s -o %s.res --quiet", corpus, ckpt, model);
    assert_int_equal(slm(a), 0);
}

static void test_generate_real_model_and_chat(void **state) {
    (void)state;
    const char *m = "data/models/stories260K/stories260K.gguf";
    char a[512];
    /* the documented greedy text of a model llama.cpp's tools wrote, SentencePiece vocabulary */
    snprintf(a, sizeof a, "generate %s -n 15 --temp 0", m);
    assert_int_equal(slm(a), 0);
    assert_string_equal(out, "Once upon a time, there was a little girl named Lily.\n");
    /* no chat template in that file: a clear error; a named family renders the prompt */
    snprintf(a, sizeof a, "generate %s --chat -p hi", m);
    assert_int_equal(slm(a), 1);
    assert_non_null(strstr(out, "tokenizer.chat_template"));
    snprintf(a, sizeof a, "generate %s --chat --chat-template chatml --system 'be brief' -p hi -n 3 --echo", m);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                                "<|im_start|>assistant\n"));
    snprintf(a, sizeof a, "generate %s --chat --chat-template nonesuch -p hi", m);
    assert_int_not_equal(slm(a), 0);
    assert_non_null(strstr(out, "nonesuch"));
    snprintf(a, sizeof a, "generate %s --system x -p hi", m);
    assert_int_equal(slm(a), 2);
    /* quantized to Q8_0, the same greedy text */
    const char *q = tu_tmp_path("stories-q8.gguf");
    snprintf(a, sizeof a, "quantize %s -o %s --type q8_0 --quiet", m, q);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "generate %s -n 15 --temp 0", q);
    assert_int_equal(slm(a), 0);
    assert_string_equal(out, "Once upon a time, there was a little girl named Lily.\n");
}

/* data prepare -> finetune -> classify on a small synthetic task with a malformed row. */
static void test_task_model_round(void **state) {
    (void)state;
    const char *csv = tu_tmp_path("task.csv"), *dir = tu_tmp_path("task"), *model = tu_tmp_path("task.gguf");
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fputs("text,category\n", f);
    const char *kinds[3][2] = {{"my card has not arrived", "card_arrival"},
                               {"how do I top up my account", "top_up"},
                               {"what is the exchange rate", "exchange_rate"}};
    for (int i = 0; i < 240; i++)
        fprintf(f, "\"%s, request %d\",%s\n", kinds[i % 3][0], i, kinds[i % 3][1]);
    fputs("\"an unterminated, row\n", f); /* malformed: reported, skipped */
    fclose(f);
    char a[2048];
    snprintf(a, sizeof a, "data prepare %s --task classify --text text --label category --split 0.8,0.2 --seed 1 -o %s",
             csv, dir);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "240 rows read") ? out : strstr(out, "241 rows read"));
    snprintf(a, sizeof a, "finetune --data %s --task classify --preset tiny --epochs 3 --vocab 300 -o %s --quiet", dir, model);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "classify %s 'my card has not arrived yet' --top 2", model);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "card_arrival"));
    /* --refit: a second body on training + validation, the first run's choices and validation */
    const char *refit = tu_tmp_path("task-refit.gguf");
    snprintf(a, sizeof a, "finetune --data %s --task classify --preset tiny --epochs 2 --vocab 300 --refit -o %s",
             dir, refit);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "refit: a new body on"));
    assert_non_null(strstr(out, "2.00 epochs")); /* the whole first run's length, not its best epoch */
    assert_non_null(strstr(out, "the n-gram part and the refit's ")); /* the summary tells the two runs apart */
    snprintf(a, sizeof a, "info %s", refit);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "slm.train.refit"));
    snprintf(a, sizeof a, "finetune --data %s --task classify --resume %s --refit -o %s", dir, model, refit);
    assert_int_equal(slm(a), 2);
    assert_non_null(strstr(out, "--refit"));
    snprintf(a, sizeof a, "classify %s --file %s/val.jsonl", model, dir);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "accuracy"));
    /* the evaluation report, and a gate of the model against its own report */
    const char *rep = tu_tmp_path("report");
    snprintf(a, sizeof a, "eval %s --data %s/val.jsonl --latency-samples 5 -o %s", model, dir, rep);
    assert_int_equal(slm(a), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/report.json", rep);
    FILE *rj = fopen(path, "r");
    assert_non_null(rj);
    fclose(rj);
    snprintf(a, sizeof a, "eval %s --data %s/val.jsonl --latency-samples 5 --gate %s/report.json", model, dir, rep);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "eval %s --data %s/val.jsonl --gate /nonexistent/report.json", model, dir);
    assert_int_equal(slm(a), 1);
    assert_non_null(strstr(out, "/nonexistent/report.json"));
    /* compress and distill: prune 2:4, a student trained on the model's soft labels, a LoRA
     * adapter over the model's body merged back into a full model */
    const char *pruned = tu_tmp_path("task-p.gguf"), *student = tu_tmp_path("task-s.gguf");
    const char *adapter = tu_tmp_path("task-lora.gguf"), *merged = tu_tmp_path("task-merged.gguf");
    snprintf(a, sizeof a, "prune %s --nm 2:4 -o %s", model, pruned);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "0.5"));
    snprintf(a, sizeof a, "distill --teacher %s --data %s --preset tiny --steps 20 -o %s --quiet", model, dir, student);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "finetune --data %s --task classify --init %s --lora 4 --lora-dropout 1 -o %s", dir, model,
             adapter);
    assert_int_equal(slm(a), 2); /* rank dropout is a probability below 1 */
    assert_non_null(strstr(out, "--lora-dropout"));
    snprintf(a, sizeof a, "finetune --data %s --task classify --init %s --dropout 0.95 -o %s", dir, model, adapter);
    assert_int_equal(slm(a), 2);
    assert_non_null(strstr(out, "--dropout"));
    snprintf(a, sizeof a, "finetune --data %s --task classify --init %s --lora 4 --lora-dropout 0.1 --steps 10 -o %s "
             "--quiet", dir, model, adapter);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "lora merge %s %s -o %s", model, adapter, merged);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "classify %s 'how do I top up'", merged);
    assert_int_equal(slm(a), 0);
    static char merged_out[sizeof out];
    memcpy(merged_out, out, sizeof out);
    snprintf(a, sizeof a, "classify %s --lora %s 'how do I top up'", model, adapter);
    assert_int_equal(slm(a), 0);
    assert_string_equal(out, merged_out); /* adapter over its base = merged model */
    snprintf(a, sizeof a, "lora merge %s %s -o %s", model, model, merged);
    assert_int_not_equal(slm(a), 0); /* not an adapter: a clear error */

    snprintf(a, sizeof a, "classify data/models/stories260K/stories260K.gguf hello");
    assert_int_equal(slm(a), 1); /* a language model is not a classifier: a clear error */
    assert_non_null(strstr(out, "classify"));
}

/* A two-letter reversal task as prompt/completion JSONL in dir (40 train, 8 val) and a 300-token
 * tokenizer tok trained on a slice of tinyshakespeare (written to text). */
static void write_reversal_task(const char *dir, const char *text, const char *tok) {
    char a[2048];
    snprintf(a, sizeof a, "mkdir -p %s", dir);
    assert_int_equal(system(a), 0);
    const char *split[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, split[k]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < (k ? 8 : 40); i++)
            fprintf(f, "{\"prompt\":\"rev %c%c=\",\"completion\":\"%c%c\"}\n", 'a' + i % 7, 'b' + i % 5,
                    'b' + i % 5, 'a' + i % 7);
        fclose(f);
    }
    snprintf(a, sizeof a, "head -c 20000 data/tinyshakespeare/input.txt > %s", text);
    assert_int_equal(system(a), 0);
    snprintf(a, sizeof a, "tokenizer train %s --vocab 300 -o %s", text, tok);
    assert_int_equal(slm(a), 0);
}

/* finetune --task generate on prompt/completion JSONL; the result generates. */
static void test_generate_task_round(void **state) {
    (void)state;
    const char *dir = tu_tmp_path("sft"), *tok = tu_tmp_path("sft-tok.gguf"), *model = tu_tmp_path("sft.gguf");
    const char *text = tu_tmp_path("sft-text.txt");
    char a[2048];
    write_reversal_task(dir, text, tok);
    snprintf(a, sizeof a, "finetune --task generate --data %s --preset tiny --tokenizer %s --steps 5 --dropout 0.1 "
             "-o %s --quiet", dir, tok, model);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "generate %s -p 'rev ab=' -n 3 --temp 0", model);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "finetune --task generate --data /nonexistent --preset tiny --tokenizer %s -o %s", tok, model);
    assert_int_not_equal(slm(a), 0);
    assert_non_null(strstr(out, "/nonexistent"));
}

static void test_bad_arguments_are_clear(void **state) {
    (void)state;
    assert_int_equal(slm("train --data x.txt"), 2);
    assert_non_null(strstr(out, "-o"));
    assert_int_equal(slm("train --data x.txt -o m.gguf --tokenizer t.gguf --steps ten"), 2);
    assert_non_null(strstr(out, "--steps"));
    assert_int_equal(slm("generate"), 2);
    assert_int_equal(slm("generate m.gguf --temp"), 2);
    assert_non_null(strstr(out, "--temp"));
    assert_int_equal(slm("generate /nonexistent.gguf -p hi"), 1);
    assert_non_null(strstr(out, "/nonexistent.gguf"));
    assert_int_equal(slm("train --data /nonexistent.txt --tokenizer data/tokenizer-vectors/ggml-vocab-gpt-2.gguf -o /tmp/x.gguf"), 1);
    assert_non_null(strstr(out, "/nonexistent.txt"));
}

/* distill --task generate: a student from a generate teacher's distributions, which generates;
 * an --init base with another tokenizer is refused naming the first differing token. */
static void test_distill_generate_round(void **state) {
    (void)state;
    const char *dir = tu_tmp_path("kd-sft"), *tok = tu_tmp_path("kd-tok.gguf"), *text = tu_tmp_path("kd-text.txt");
    const char *teacher = tu_tmp_path("kd-teacher.gguf"), *student = tu_tmp_path("kd-student.gguf");
    char a[2048];
    write_reversal_task(dir, text, tok);
    snprintf(a, sizeof a, "finetune --task generate --data %s --preset tiny --tokenizer %s --steps 10 -o %s --quiet",
             dir, tok, teacher);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "distill --task generate --teacher %s --data %s --preset tiny --steps 5 --alpha 0.8 -o %s "
             "--quiet", teacher, dir, student);
    assert_int_equal(slm(a), 0);
    assert_non_null(strstr(out, "per completion token (teacher "));
    snprintf(a, sizeof a, "generate %s -p 'rev ab=' -n 3 --temp 0", student);
    assert_int_equal(slm(a), 0);
    snprintf(a, sizeof a, "distill --task generate --teacher %s --data %s --init data/models/stories260K/stories260K.gguf "
             "--steps 1 -o %s --quiet", teacher, dir, student);
    assert_int_equal(slm(a), 1);
    assert_non_null(strstr(out, "token 0 is '<|unk|>' in the teacher, '<unk>' in the student"));
    assert_int_equal(slm("distill --help"), 0);
    assert_non_null(strstr(out, "--task generate"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_for_every_command),
        cmocka_unit_test(test_info_on_a_llama_cpp_file),
        cmocka_unit_test(test_train_generate_tokenize_round),
        cmocka_unit_test(test_generate_real_model_and_chat),
        cmocka_unit_test(test_task_model_round),
        cmocka_unit_test(test_generate_task_round),
        cmocka_unit_test(test_bad_arguments_are_clear),
        cmocka_unit_test(test_distill_generate_round),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
