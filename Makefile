# slm: build, test, sanitizer check, demo and benchmarks.
#
#   make            library (build/libslm.a) and the command (build/slm)
#   make test       installs what is missing (scripts/setup), builds, runs every test
#   make check      the tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       the main job on Banking77: data, fine-tuning from the committed base, Q8_0,
#                   evaluation next to a TF-IDF baseline (report in out/demo/report/)
#   make demo-lm    tokenizer + small model trained on tinyshakespeare, bits per byte, a sample
#   make bench      benchmarks (speed is measured here, never in tests)
#
# Sources are found by wildcard: a new src/<layer>/<idea>.c, tools/cmd_<name>.c or
# tests/test_<name>.c needs no change here.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
PKGS    := openblas libpcre2-8 libcjson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -Wall -Wextra -Wno-unused-parameter \
           -Wshadow -Wstrict-prototypes -Iinclude -Isrc $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(SAN)
LDLIBS  += $(PKG_LIBS) -lm -lpthread

LIB_SRC  := $(sort $(wildcard src/*/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTUTIL_SRC := $(sort $(wildcard tests/util/*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TESTUTIL_OBJ := $(TESTUTIL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/libslm.a
SLM      := $(BUILD)/slm

.PHONY: all setup test test-run check demo demo-lm bench clean
.SECONDARY:
all: $(LIB) $(SLM)

setup:
	@scripts/setup

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SLM): $(TOOL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TESTUTIL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTUTIL_OBJ) $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The README's test command. Installs what is missing first, then builds and runs every test;
# the last line is "tests: N passed, M failed".
test: setup
	@$(MAKE) --no-print-directory test-run

test-run: $(LIB) $(SLM) $(TEST_BIN)
	@SLM=$(SLM) scripts/run-tests $(TEST_BIN)

check: setup
	@$(MAKE) --no-print-directory BUILD=build-san OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    test-run

demo:
	@scripts/setup --with-sklearn
	@$(MAKE) --no-print-directory all
	@SLM=$(SLM) scripts/demo

demo-lm: setup
	@$(MAKE) --no-print-directory all
	@SLM=$(SLM) scripts/demo-lm

bench: setup
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@SLM=$(SLM) scripts/bench

clean:
	rm -rf build build-san build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
