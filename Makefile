# ngx_http_kafka_producer_module
#
#   make            build the module and tools/kafka-mock into build/
#   make run        local Kafka-protocol cluster + nginx on 127.0.0.1:8080
#   make test       the whole suite (prove -r t/)
#   make test-asan  the suite with the module built with ASan and UBSan

SHELL := /bin/bash

NGINX_SRC ?= /usr/share/nginx/src
NGINX ?= /usr/sbin/nginx
BUILD ?= build
ASAN_BUILD ?= build-asan

MODULE = ngx_http_kafka_producer_module.so
SOURCES = config ngx_http_kafka_producer_module.c $(wildcard src/*.c src/*.h)

SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: all deps run test test-asan clean

all: $(BUILD)/$(MODULE) $(BUILD)/kafka-mock

deps:
	@tools/install-deps.sh

# configure once per build directory, as nginx's own build does
$(BUILD)/nginx/objs/Makefile: config
	rm -rf $(BUILD)/nginx
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && . ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" $(EXTRA_CONFIGURE) \
	           --add-dynamic-module=$(CURDIR) > configure.log \
	    || { cat configure.log; exit 1; }

$(BUILD)/$(MODULE): $(BUILD)/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules
	cp $(BUILD)/nginx/objs/$(MODULE) $@

$(BUILD)/kafka-mock: tools/kafka-mock.c
	mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Werror -o $@ $< -lrdkafka

$(ASAN_BUILD)/$(MODULE): $(SOURCES)
	$(MAKE) BUILD=$(ASAN_BUILD) \
	    EXTRA_CONFIGURE='--with-cc-opt="$(SAN_FLAGS)" --with-ld-opt="$(SAN_FLAGS)"' \
	    $(ASAN_BUILD)/nginx/objs/Makefile
	$(MAKE) -C $(ASAN_BUILD)/nginx -f objs/Makefile modules
	cp $(ASAN_BUILD)/nginx/objs/$(MODULE) $@

run: deps all
	tools/run.sh

test: deps all
	prove -r t/

test-asan: deps $(ASAN_BUILD)/$(MODULE) $(BUILD)/kafka-mock
	TEST_NGINX_MODULE=$(ASAN_BUILD)/$(MODULE) \
	TEST_NGINX_LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	    prove -r t/

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
