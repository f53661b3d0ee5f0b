
/*
 * rdkafka-fail-new.so: a test fault injector, LD_PRELOADed into nginx by
 * the tests (t/055-lifecycle.t), never into production.
 *
 * It interposes rd_kafka_new(): while the file named by the environment
 * variable KAFKA_PRODUCER_FAIL_NEW exists, creating a producer that has
 * bootstrap servers fails as librdkafka fails when it cannot start its
 * threads; otherwise it calls librdkafka's own rd_kafka_new().  The
 * configuration check of "nginx -t" (no bootstrap servers) is never
 * failed, so the tests reach what a worker does on a transient failure:
 * keep serving, answer 503, retry with a backoff, and recover.
 */


#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>


typedef rd_kafka_t *(*rd_kafka_new_pt)(rd_kafka_type_t type,
    rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);


rd_kafka_t *
rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
    size_t errstr_size)
{
    char                    servers[512];
    size_t                  size;
    const char             *file;
    static rd_kafka_new_pt  real;

    if (real == NULL) {
        real = (rd_kafka_new_pt) dlsym(RTLD_NEXT, "rd_kafka_new");

        if (real == NULL) {
            snprintf(errstr, errstr_size, "rdkafka-fail-new: %s", dlerror());
            return NULL;
        }
    }

    file = getenv("KAFKA_PRODUCER_FAIL_NEW");
    size = sizeof(servers);

    if (file != NULL
        && access(file, F_OK) == 0
        && rd_kafka_conf_get(conf, "bootstrap.servers", servers, &size)
           == RD_KAFKA_CONF_OK
        && size > 1)
    {
        snprintf(errstr, errstr_size,
                 "Failed to create thread: Resource temporarily unavailable "
                 "(injected by rdkafka-fail-new)");
        return NULL;
    }

    return real(type, conf, errstr, errstr_size);
}
