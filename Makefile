# ngx_http_kafka_producer_module
#
#   make            build the module and tools/kafka-mock into build/
#   make run        local Kafka-protocol cluster + nginx on 127.0.0.1:8080
#   make lab        the lab on this machine, no Docker: Apache Kafka (Maven),
#                   Toxiproxy (go install) and nginx on 127.0.0.1:8080
#                   through the proxy; scripts/lab-faults.sh works on it
#   make test       the whole suite (prove -r t/), on the mock cluster
#   make test-kafka the suite on Apache Kafka behind Toxiproxy: blocks that
#                   need a mock-only fault are skipped, t/060-kafka.t's
#                   real-broker tests run (KAFKA_VERSION=4.4.0 for Kafka 4)
#   make test-asan  the suite with the module built with ASan and UBSan
#   make deb        the Debian package into build/deb/ (debian/, dh_nginx)
#   make check-deploy  Dockerfile/k8s/compose/scripts/.deb checks (root)
#   make check-dashboard  the workshop's dashboard in headless Chromium
#                   against make run: its numbers against the API, a
#                   screenshot in build/artifacts/dashboard.png
#   make fuzz       build the libFuzzer target (fuzz/) and run it for
#                   FUZZ_TIME seconds (default 60); make fuzz-build only builds
#   make test-valgrind  t/010-send.t t/020-errors.t t/030-config.t
#                   t/040-faults.t t/070-pass.t with nginx under valgrind memcheck
#                   (VALGRIND_TESTS=... for others)
#   make check-openapi  docs/openapi.yaml against a live nginx with the
#                   module: schemathesis (PyPI) generates requests for every
#                   operation; no 5xx, every answer matches the document
#   make bench      the benchmark (tools/bench/), results in bench/results/

SHELL := /bin/bash

NGINX_SRC ?= /usr/share/nginx/src
NGINX ?= /usr/sbin/nginx
BUILD ?= build
ASAN_BUILD ?= build-asan

MODULE = ngx_http_kafka_producer_module.so
SOURCES = config ngx_http_kafka_producer_module.c $(wildcard src/*.c src/*.h)

SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: all deps run lab test-kafka test test-asan fuzz fuzz-build fuzz-deps \
        test-valgrind valgrind-deps clean

all: $(BUILD)/$(MODULE) $(BUILD)/kafka-mock $(BUILD)/rdkafka-fail-new.so

deps:
	@tools/install-deps.sh

# one build directory per flavour of the module: $(BUILD) (make),
# $(ASAN_BUILD) (make test-asan), $(VALGRIND_BUILD) (make test-valgrind);
# each is configured once, as nginx's own build does
%/nginx/objs/Makefile: config
	rm -rf $*/nginx
	mkdir -p $*
	cp -r $(NGINX_SRC) $*/nginx
	cd $*/nginx && . ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" $(EXTRA_CONFIGURE) \
	           --add-dynamic-module=$(CURDIR) > configure.log \
	    || { cat configure.log; exit 1; }

# copied, then renamed: a module overwritten in place under a running
# nginx would crash it
%/$(MODULE): %/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -C $*/nginx -f objs/Makefile modules
	cp $*/nginx/objs/$(MODULE) $@.tmp
	mv -f $@.tmp $@

.PRECIOUS: %/nginx/objs/Makefile

$(ASAN_BUILD)/nginx/objs/Makefile: \
    EXTRA_CONFIGURE = --with-cc-opt="$(SAN_FLAGS)" --with-ld-opt="$(SAN_FLAGS)"

$(BUILD)/kafka-mock: tools/kafka-mock.c
	mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

# a test fault injector (LD_PRELOAD): rd_kafka_new() fails on demand
$(BUILD)/rdkafka-fail-new.so: tools/rdkafka-fail-new.c
	mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl -lrdkafka

run: deps all
	tools/run.sh

# the lab on Apache Kafka and Toxiproxy (tools/lab.sh): needs Java 17,
# Maven and Go; the jars and binaries land in build/
lab: deps all
	tools/lab.sh

test: deps all
	prove -r t/

# the suite on Apache Kafka behind Toxiproxy (tools/test-kafka.sh), with
# t/060-kafka.t; TEST_KAFKA_ARGS are prove's (default -r t/), KAFKA_VERSION
# another Kafka (e.g. 4.4.0)
TEST_KAFKA_ARGS ?=
test-kafka: deps all
	tools/test-kafka.sh $(TEST_KAFKA_ARGS)

test-asan: deps $(ASAN_BUILD)/$(MODULE) $(BUILD)/kafka-mock \
           $(BUILD)/rdkafka-fail-new.so
	TEST_NGINX_MODULE=$(ASAN_BUILD)/$(MODULE) \
	TEST_NGINX_LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	    prove -r t/

# installs the Debian packages $(1) that are missing
define install_missing
	@missing=; for p in $(1); do \
	    dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null \
	        | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

# libFuzzer (fuzz/): nginx's full source of the installed version (apt,
# fuzz/nginx-src.sh) built with clang, ASan and UBSan; the target is linked
# against its objects and the module's src/ objects built the same way.
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 60
FUZZ_CC ?= clang-14
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer \
              -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=all -DNGX_HTTP_KAFKA_PRODUCER_FUZZ=1
FUZZ_TARGET = $(FUZZ_BUILD)/nginx/objs/fuzz_kafka_producer
FUZZ_ARGS ?=

fuzz-deps: deps
	$(call install_missing,clang-14 libclang-rt-14-dev binutils)

$(FUZZ_BUILD)/nginx/src/core/nginx.c:
	fuzz/nginx-src.sh $(FUZZ_BUILD)/nginx

$(FUZZ_BUILD)/nginx/objs/Makefile: config $(FUZZ_BUILD)/nginx/src/core/nginx.c
	cd $(FUZZ_BUILD)/nginx && . ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" --with-cc=$(FUZZ_CC) \
	           --with-cc-opt='$(FUZZ_CFLAGS)' \
	           --with-ld-opt='-fsanitize=address,undefined' \
	           --add-dynamic-module=$(CURDIR) > configure.log \
	    || { cat configure.log; exit 1; }

fuzz-build: fuzz-deps $(FUZZ_BUILD)/nginx/objs/Makefile
	$(MAKE) -C $(FUZZ_BUILD)/nginx -f objs/Makefile binary modules
	$(MAKE) -C $(FUZZ_BUILD)/nginx -f objs/Makefile \
	    -f $(CURDIR)/fuzz/fuzz.mk FUZZ_REPO=$(CURDIR) fuzz-target

# fails on any crash, sanitizer report, leak or failed check; new inputs go
# to $(FUZZ_BUILD)/corpus, a failing one to $(FUZZ_BUILD)/artifacts/
fuzz: fuzz-build
	mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	$(FUZZ_TARGET) -max_total_time=$(FUZZ_TIME) -timeout=10 \
	    -max_len=4096 -dict=fuzz/args.dict -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/ $(FUZZ_ARGS) \
	    $(FUZZ_BUILD)/corpus fuzz/corpus

# the Debian package libnginx-mod-http-kafka-producer (debian/, dh-sequence-nginx)
# into $(BUILD)/deb; check-deploy: the deployment checks CI can run here
# (shellcheck, yamllint, kustomize, schemas, nginx -t, .deb install, e2e)
# docs/openapi.yaml checked by schemathesis (tools/check-openapi.sh; a venv
# under $(BUILD), python3-venv from Debian)
.PHONY: check-openapi
check-openapi: deps all
	$(call install_missing,python3-venv curl)
	BUILD=$(abspath $(BUILD)) tools/check-openapi.sh

.PHONY: deb check-deploy

deb:
	scripts/build-deb.sh $(BUILD)/deb

check-deploy:
	BUILD=$(abspath $(BUILD)) tools/check-deploy.sh

# chromium is installed for this check only (a large package)
.PHONY: check-dashboard
check-dashboard: deps all
	tools/install-deps.sh chromium fonts-dejavu-core
	BUILD=$(abspath $(BUILD)) tools/check-dashboard.sh

# valgrind: the module built as for `make`, in a directory of its own (a
# module rebuilt in place under a running nginx would crash it); the harness
# runs nginx under memcheck and fails a block on any error or definite leak
# (TEST_NGINX_VALGRIND, t/valgrind.supp)
VALGRIND_BUILD ?= build-valgrind
VALGRIND_TESTS ?= t/010-send.t t/020-errors.t t/030-config.t t/040-faults.t \
                  t/070-pass.t

valgrind-deps: deps
	$(call install_missing,valgrind)

test-valgrind: valgrind-deps $(VALGRIND_BUILD)/$(MODULE) $(BUILD)/kafka-mock \
               $(BUILD)/rdkafka-fail-new.so
	TEST_NGINX_VALGRIND=1 TEST_NGINX_MODULE=$(VALGRIND_BUILD)/$(MODULE) \
	    prove $(VALGRIND_TESTS)

# the benchmark: kafka-mock (3 brokers), nginx with the module (2 workers)
# and wrk, all on this machine (tools/bench/bench.pl); JSON and a chart in
# bench/results/.  A short smoke run for CI:
#   make bench BENCH_DURATION=2s BENCH_RUNS=1 BENCH_SENDS=20000
BENCH_DURATION ?= 10s
BENCH_RUNS ?= 3
BENCH_CONNECTIONS ?= 64
BENCH_SENDS ?= 1000000
BENCH_LINGER ?= 0/1

.PHONY: bench bench-deps

bench-deps: deps
	$(call install_missing,wrk gnuplot-nox)

$(BUILD)/rawbench: tools/bench/rawbench.c
	mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

bench: bench-deps all $(BUILD)/rawbench
	BUILD=$(BUILD) BENCH_DURATION=$(BENCH_DURATION) BENCH_RUNS=$(BENCH_RUNS) \
	BENCH_CONNECTIONS=$(BENCH_CONNECTIONS) BENCH_SENDS=$(BENCH_SENDS) \
	BENCH_LINGER=$(BENCH_LINGER) tools/bench/bench.pl

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(VALGRIND_BUILD)
