# mhtas -- plain Makefile (after redis's src/Makefile): object lists, -MMD
# dependencies, overridable optimisation, SANITIZE=1 for ASan+UBSan.
#
#   make            build everything into bin/
#   make test       install missing dependencies, build, run every test
#   make run        install missing dependencies, build, run the demo
#   make deps       install missing Debian/npm packages (deploy/deps.sh)
#   SANITIZE=1 make test   the same under AddressSanitizer + UBSan

CC       ?= cc
OPT      ?= -O2
PKGS     := libuv libnghttp2 hiredis libprotobuf-c libwebsockets jansson inih libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ifeq ($(SANITIZE),1)
  BUILD    := build/san
  BINDIR   := build/san/bin
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT      := -O1 -g
else
  BUILD    := build/rel
  BINDIR   := bin
  SANFLAGS :=
endif
GEN      := build/gen

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(SANFLAGS) -MMD -MP \
            -I$(GEN) -Iserver -Iclient $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm
LDFLAGS  += $(SANFLAGS)

PROTOS     := $(wildcard proto/mhtas/v1/*.proto)
PROTO_SRC  := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_HDR  := $(PROTO_SRC:.c=.h)
PROTO_OBJ  := $(patsubst $(GEN)/%.c,$(BUILD)/gen/%.o,$(PROTO_SRC))

# Every server source except main.c goes into one static library, which the
# hub, the tools and the tests link against.
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*/*.c))
SERVER_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SERVER_SRC))
SERVER_LIB := $(BUILD)/libmhtas.a

CLIENT_SRC := $(wildcard client/lib/*.c)
CLIENT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(CLIENT_SRC))

UNIT_SRC   := $(wildcard tests/unit/*/*_test.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

BINS := $(BINDIR)/mhtas-hub
CLI_SRC := $(wildcard client/cli/*.c)
ifneq ($(CLI_SRC),)
  BINS += $(BINDIR)/mhtas-cli
endif
ifneq ($(wildcard loadtest/journal_bench.c),)
  BINS += $(BINDIR)/mhtas-journal-bench
endif
# The practitioners' desktop client (GTK 4).
DESK_SRC   := $(wildcard client/desk/*.c)
GTK_CFLAGS := $(shell pkg-config --cflags gtk4 2>/dev/null)
GTK_LIBS   := $(shell pkg-config --libs gtk4 2>/dev/null)
ifneq ($(DESK_SRC),)
  BINS += $(BINDIR)/mhtas-desk
endif

# The radio dispatcher relay (client/relay, issue 7). RELAY_LIB holds its
# I/O-free modules -- advice splitting, the TETRA PEI conversation, the
# dispatcher line protocol, the radio outbox (rate limit, retries) and the
# config reader -- which bin/mhtas-relay and tests/unit/relay/*_test.c both
# link; radio.c, session.c, bridge.c and main.c are the libuv shell around
# them. bin/mhtas-pei-sim is a simulated TETRA radio terminal on a
# pseudo-terminal, for the end-to-end tests and for trying the relay without a
# radio.
RELAY_PURE    := $(wildcard $(patsubst %,client/relay/%.c,split pei lines outbox relay_conf))
RELAY_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(RELAY_PURE))
RELAY_LIB     := $(BUILD)/librelay.a
RELAY_OBJ     := $(filter-out $(RELAY_LIB_OBJ),$(patsubst %.c,$(BUILD)/%.o,$(wildcard client/relay/*.c)))
ifneq ($(wildcard client/relay/main.c),)
  BINS += $(BINDIR)/mhtas-relay $(BINDIR)/mhtas-pei-sim
endif

LOADTEST_SRC := $(wildcard loadtest/lt_*.c)
ifneq ($(LOADTEST_SRC),)
  BINS += $(BINDIR)/mhtas-loadtest
endif
BINS += $(BINDIR)/mhtas-journal $(BINDIR)/mhtas-import $(BINDIR)/mhtas-gen-people $(BINDIR)/mhtas-cache-bench \
        $(BINDIR)/mhtas-care-hub-bench $(BINDIR)/mhtas-restart-bench

.PHONY: all test unit e2e run deps clean bench
all: $(BINS)

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto $(PROTOS)
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

$(BUILD)/gen/%.o: $(GEN)/%.c $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c $< -o $@

$(BUILD)/%.o: %.c $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(SERVER_LIB): $(SERVER_OBJ) $(PROTO_OBJ) $(CLIENT_OBJ)
	@rm -f $@.tmp.$$$$; ar rcs $@.tmp.$$$$ $^ && mv -f $@.tmp.$$$$ $@

$(BINDIR)/mhtas-hub: $(BUILD)/server/main.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-cli: $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRC)) $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-journal-bench: $(BUILD)/loadtest/journal_bench.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(SERVER_LIB) $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(SERVER_LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

$(BINDIR)/mhtas-import: $(BUILD)/tools/import.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-gen-people: $(BUILD)/tools/gen_people.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-journal: $(BUILD)/tools/mhtas_journal.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-restart-bench: $(BUILD)/loadtest/restart_bench.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-cache-bench: $(BUILD)/loadtest/cache_bench.o $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Care records through a running hub (gRPC, the client library).
$(BINDIR)/mhtas-care-hub-bench: $(BUILD)/loadtest/care_hub_bench.o $(CLIENT_OBJ) $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/cache/cache_redis_test: tests/cache/cache_redis_test.c $(SERVER_LIB) $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(SERVER_LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILD)/client/desk/%.o: CFLAGS += $(GTK_CFLAGS)
$(BINDIR)/mhtas-desk: $(patsubst %.c,$(BUILD)/%.o,$(DESK_SRC)) $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(GTK_LIBS) $(LDLIBS)

# ---- the radio relay (see RELAY_LIB above)
$(RELAY_LIB): $(RELAY_LIB_OBJ)
	@rm -f $@.tmp.$$$$; ar rcs $@.tmp.$$$$ $^ && mv -f $@.tmp.$$$$ $@

$(BINDIR)/mhtas-relay: $(RELAY_OBJ) $(RELAY_LIB) $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mhtas-pei-sim: $(BUILD)/tools/pei_sim.o $(RELAY_LIB) $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The relay's unit tests link RELAY_LIB (a more specific pattern than the
# generic tests/unit rule above, so make picks this one for tests/relay/).
$(BUILD)/tests/relay/%: tests/unit/relay/%.c $(RELAY_LIB) $(SERVER_LIB) $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(RELAY_LIB) $(SERVER_LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

$(BINDIR)/mhtas-loadtest: $(patsubst %.c,$(BUILD)/%.o,$(LOADTEST_SRC)) $(SERVER_LIB)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The standard benchmark (docs/PERFORMANCE.md): hub vs floor for every leg,
# then the saturation search.
bench: $(BINDIR)/mhtas-hub $(BINDIR)/mhtas-loadtest
	@mkdir -p build
	$(BINDIR)/mhtas-loadtest --hub $(BINDIR)/mhtas-hub --scenario loadtest/scenarios/bench.conf --json build/bench.json
	$(BINDIR)/mhtas-loadtest --hub $(BINDIR)/mhtas-hub --scenario loadtest/scenarios/saturation.conf --json build/bench-saturation.json

# The care-summary cache against a real redis-server it starts itself.
.PHONY: cache-test cache-bench kill-test valgrind
cache-test: $(BINDIR)/mhtas-import $(BINDIR)/mhtas-gen-people $(BUILD)/tests/cache/cache_redis_test
	@MHTAS_BINDIR=$(BINDIR) tests/run-unit.sh $(BUILD)/tests/cache/cache_redis_test

cache-bench: $(BINDIR)/mhtas-import $(BINDIR)/mhtas-gen-people $(BINDIR)/mhtas-cache-bench \
             $(BINDIR)/mhtas-hub $(BINDIR)/mhtas-care-hub-bench
	@MHTAS_BINDIR=$(BINDIR) tests/cache/bench.sh

# The client library's loop tests start the real hub.
$(BUILD)/tests/client/client_test: $(BINDIR)/mhtas-hub

deps:
	@deploy/deps.sh

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

# The whole suite: release build (unit + end-to-end), then the same again
# under ASan+UBSan. tests/run-all.sh prints one "N passed, N failed" line.
test: deps
	@tests/run-all.sh

e2e: all
	@tests/run-e2e.sh $(BINDIR)/mhtas-hub

# The hub under valgrind (memcheck: any error or definite leak fails) through
# the end-to-end files that exercise most of it; make test runs this too.
VALGRIND_E2E := 01-health 02-flow 03-auth 04-malformed 05-disconnect 06-grpc-interop 07-restart \
                08-keepalive 30-care 40-relay-lines 41-relay-radio
valgrind: all
	@tests/run-e2e.sh $(BINDIR)/mhtas-hub valgrind $(VALGRIND_E2E)

# The longer kill test: KILLS SIGKILLs (default 2000) of a hub under a steady
# stream of outcomes; every acknowledged outcome must be there exactly once.
# make test runs 200 (30 under ASan).
KILLS ?= 2000
kill-test: all
	@cd tests/e2e && MHTAS_KILLS=$(KILLS) MHTAS_HUB=$(abspath $(BINDIR))/mhtas-hub \
	    node --test --test-reporter=spec test/20-kill.test.js

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/demo.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
