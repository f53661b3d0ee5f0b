# Links the libFuzzer target against nginx's objects.  Read after nginx's
# generated objs/Makefile, in the fuzz build's nginx directory, by the top
# Makefile's fuzz-build target:
#
#   make -C build-fuzz/nginx -f objs/Makefile -f REPO/fuzz/fuzz.mk \
#        FUZZ_REPO=REPO fuzz-target
#
# so that CC, CFLAGS (clang, -fsanitize=fuzzer-no-link,address,undefined)
# and ALL_INCS are nginx's own.  Every nginx object is linked, nginx.o with
# its main() renamed (libFuzzer has the main()); of the module, the src/
# objects only: ngx_http_kafka_producer_module.c needs ngx_devel_kit, and
# the fuzz target defines the module structure itself.

FUZZ_SAN = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

FUZZ_NGX_OBJS = $(filter-out objs/src/core/nginx.o, \
                    $(wildcard objs/src/*/*.o objs/src/*/*/*.o \
                               objs/src/*/*/*/*.o)) \
                objs/ngx_modules.o

FUZZ_ADDON_OBJS = $(wildcard objs/addon/src/*.o)

# the libraries nginx itself is linked with
FUZZ_LINK_RE = /^[[:space:]]$$(LINK) -o objs\/nginx/,/^$$/p
FUZZ_LIBS = $(sort $(filter -l%, \
                $(shell sed -n '$(FUZZ_LINK_RE)' objs/Makefile)))

fuzz-target: objs/fuzz_kafka_producer

objs/fuzz/nginx.o: objs/src/core/nginx.o
	mkdir -p objs/fuzz
	objcopy --redefine-sym main=ngx_http_kafka_producer_fuzz_nginx_main \
	    $< $@

objs/fuzz/fuzz_kafka_producer.o: $(FUZZ_REPO)/fuzz/fuzz_kafka_producer.c \
                                 $(ADDON_DEPS)
	mkdir -p objs/fuzz
	$(CC) -c $(CFLAGS) $(ALL_INCS) -o $@ $<

objs/fuzz_kafka_producer: objs/fuzz/fuzz_kafka_producer.o objs/fuzz/nginx.o \
                          $(FUZZ_NGX_OBJS) $(FUZZ_ADDON_OBJS)
	$(CC) -o $@ $(FUZZ_SAN) $^ $(FUZZ_LIBS) -lrdkafka -lyajl

.PHONY: fuzz-target
