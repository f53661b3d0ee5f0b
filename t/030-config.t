# Configuration mistakes are caught by nginx -t, with the directive and
# the value in the message.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';

our $Config = <<'_EOC_';
    location = /api/v1/send {
        kafka_producer_send;
    }
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: unknown librdkafka property
--- http_config
    kafka_producer_option no.such.property 1;
--- config eval: $::Config
--- must_die
--- error_log
invalid librdkafka property "no.such.property" = "1": No such configuration property: "no.such.property"



=== TEST 2: invalid value of a librdkafka property
--- http_config
    kafka_producer_option linger.ms soon;
--- config eval: $::Config
--- must_die
--- error_log eval
qr/invalid librdkafka property "linger.ms" = "soon": .*Invalid value/



=== TEST 3: properties that define the producers are refused
--- http_config
    kafka_producer_option acks all;
--- config eval: $::Config
--- must_die
--- error_log
librdkafka property "acks" cannot be set: it defines the plain and idempotent producers of the module



=== TEST 4: enable.idempotence is refused too
--- http_config
    kafka_producer_option enable.idempotence false;
--- config eval: $::Config
--- must_die
--- error_log
librdkafka property "enable.idempotence" cannot be set



=== TEST 5: a send location without brokers
--- no_default_http_config
--- http_config
    kafka_producer_status_zone kafka_status:1m;
--- config eval: $::Config
--- must_die
--- error_log
"kafka_producer_send" requires "kafka_producer_brokers"



=== TEST 6: a send location without a status zone
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
--- config eval: $::Config
--- must_die
--- error_log
"kafka_producer_send" and "kafka_producer_status" require "kafka_producer_status_zone"



=== TEST 7: malformed zone
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_status;
--- config eval: $::Config
--- must_die
--- error_log
invalid zone "kafka_status", expected NAME:SIZE



=== TEST 8: zone with a bad size
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_status:lots;
--- config eval: $::Config
--- must_die
--- error_log
invalid zone size "kafka_status:lots"



=== TEST 9: zone too small
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_status:8k;
--- config eval: $::Config
--- must_die
--- error_log eval
qr/zone "kafka_status:8k" is too small, the minimum is \d+k/



=== TEST 10: zone with a bad ttl or parameter
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_status:1m ttl=forever;
--- config eval: $::Config
--- must_die
--- error_log
invalid ttl "ttl=forever"



=== TEST 11: duplicate zone
--- http_config
    kafka_producer_status_zone other:1m;
--- config eval: $::Config
--- must_die
--- error_log
"kafka_producer_status_zone" directive is duplicate



=== TEST 12: invalid default topic
--- config
    location = /api/v1/send {
        kafka_producer_topic "bad topic";
        kafka_producer_send;
    }
--- must_die
--- error_log
invalid Kafka topic name "bad topic"



=== TEST 13: kafka_producer_allowed_topics: invalid name, bad regex, default topic not allowed, duplicate
--- config
    location = /api/v1/send {
        kafka_producer_allowed_topics good-topic "bad topic";
        kafka_producer_send;
    }
--- must_die
--- error_log
invalid Kafka topic name "bad topic"



=== TEST 14: kafka_producer_allowed_topics with a bad regex
--- config
    location = /api/v1/send {
        kafka_producer_allowed_topics ~^orders-(;
        kafka_producer_send;
    }
--- must_die
--- error_log eval
qr/pcre2?_compile\(\) failed: .* in "\^orders-\("/



=== TEST 15: the default topic of a send location must be allowed
--- http_config
    kafka_producer_allowed_topics ~^orders-;
--- config eval: $::Config
--- must_die
--- error_log
the default topic "bhf-transactions" of a send location is not in "kafka_producer_allowed_topics"



=== TEST 16: kafka_producer_allowed_topics is duplicate; kafka_producer_health takes only "detail"
--- config
    location = /api/v1/send {
        kafka_producer_allowed_topics bhf-transactions;
        kafka_producer_allowed_topics other;
        kafka_producer_send;
    }
--- must_die
--- error_log
"kafka_producer_allowed_topics" directive is duplicate



=== TEST 17: kafka_producer_health takes only "detail"
--- config
    location = /health {
        kafka_producer_health verbose;
    }
--- must_die
--- error_log
invalid parameter "verbose", it must be "detail" or "ready"



=== TEST 18: linger not below the delivery timeout
--- http_config
    kafka_producer_linger 5s;
    kafka_producer_delivery_timeout 5s;
--- config eval: $::Config
--- must_die
--- error_log
the linger time (5000 ms) must be less than the delivery timeout (5000 ms)



=== TEST 19: an infinite delivery timeout
--- http_config
    kafka_producer_option message.timeout.ms 0;
--- config eval: $::Config
--- must_die
--- error_log
an infinite delivery timeout (message.timeout.ms 0) is not supported



=== TEST 20: two handlers in one location
--- config
    location = /api/v1/send {
        kafka_producer_send;
        kafka_producer_health;
    }
--- must_die
--- error_log
"kafka_producer_health" directive is duplicate



=== TEST 21: bad time syntax in a knob
--- http_config
    kafka_producer_request_timeout 1x;
--- config eval: $::Config
--- must_die
--- error_log
"kafka_producer_request_timeout" directive invalid value



=== TEST 22: a valid configuration with options and every knob works
--- http_config
    kafka_producer_request_timeout 2s;
    kafka_producer_delivery_timeout 30s;
    kafka_producer_retry_backoff 50ms;
    kafka_producer_retries 3;
    kafka_producer_linger 5ms;
    kafka_producer_shutdown_timeout 2s;
    kafka_producer_option client.id nginx-test-17;
    kafka_producer_option max.in.flight.requests.per.connection 20;
    kafka_producer_option compression.codec lz4;
--- config eval: $::Config . 'location = /api/v1/status { kafka_producer_status; }'
--- request eval
["POST /api/v1/send?mode=idempotent&eventId=cfg-17a",
 "POST /api/v1/send?mode=plain&eventId=cfg-17b&sendMode=async"]
--- error_code eval: [200, 202]



=== TEST 23: the module loaded and unused stays idle
--- no_default_http_config
--- config
    location = /health {
        kafka_producer_health;
    }
--- request
GET /health
--- error_code: 200
--- response_body: OK
--- no_error_log
kafka_producer: plain producer



=== TEST 24: TLS/SASL settings are checked by nginx -t: a missing CA file is refused
--- http_config
    kafka_producer_option security.protocol SASL_SSL;
    kafka_producer_option sasl.mechanisms SCRAM-SHA-512;
    kafka_producer_option sasl.username gw;
    kafka_producer_option sasl.password secret;
    kafka_producer_option ssl.ca.location /nonexistent/ca.pem;
--- config eval: $::Config
--- must_die
--- error_log
librdkafka refuses the plain producer configuration: ssl.ca.location failed



=== TEST 25: conf/nginx-secure.conf passes nginx -t, without connecting to its brokers
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- test_code
use File::Temp qw(tempdir);
my $dir = tempdir('kp-secure-XXXXXX', TMPDIR => 1, CLEANUP => 1);
mkdir "$dir/logs";
open my $in, '<', 'conf/nginx-secure.conf' or die $!;
my $conf = do { local $/; <$in> };
my $module = File::Spec->rel2abs($ENV{TEST_NGINX_MODULE} // 'build/ngx_http_kafka_producer_module.so');
$conf =~ s{load_module \S+ngx_http_kafka_producer_module\.so;}{load_module $module;};
$conf =~ s{listen  8080;}{listen  127.0.0.1:8080;};
open my $out, '>', "$dir/nginx.conf" or die $!;
print $out $conf;
close $out;
open $out, '>', "$dir/kafka-password.conf" or die $!;
print $out "kafka_producer_option sasl.password secret;\n";
close $out;
# the sanitizer build needs its runtime preloaded, as the harness does
local $ENV{LD_PRELOAD} = $ENV{TEST_NGINX_LD_PRELOAD} if $ENV{TEST_NGINX_LD_PRELOAD};
local $ENV{ASAN_OPTIONS} = 'detect_leaks=0' if $ENV{TEST_NGINX_LD_PRELOAD};
my $t = `nginx -t -p $dir/ -c $dir/nginx.conf 2>&1`;
like($t, qr/test is successful/, 'nginx -t accepts the secure example') or diag($t);
unlike($t, qr/resolve|Connect to/i, 'and does not try to reach the brokers');
$conf =~ s{/etc/ssl/certs/ca-certificates.crt}{$dir/missing-ca.pem};
open $out, '>', "$dir/nginx.conf" or die $!;
print $out $conf;
close $out;
$t = `nginx -t -p $dir/ -c $dir/nginx.conf 2>&1`;
like($t, qr/librdkafka refuses the plain producer configuration: ssl.ca.location failed/, 'a missing CA is refused');



=== TEST 26: kafka_producer_linger: a bad idempotent= time
--- http_config
    kafka_producer_linger 0 idempotent=soon;
--- config eval: $::Config
--- must_die
--- error_log
invalid linger time "idempotent=soon"



=== TEST 27: kafka_producer_linger: an unknown parameter, a duplicate
--- http_config
    kafka_producer_linger 0 batch=5;
--- config eval: $::Config
--- must_die
--- error_log
invalid parameter "batch=5"



=== TEST 28: kafka_producer_linger: is duplicate
--- http_config
    kafka_producer_linger 0;
    kafka_producer_linger 1ms;
--- config eval: $::Config
--- must_die
--- error_log
"kafka_producer_linger" directive is duplicate



=== TEST 29: kafka_producer_linger: idempotent= beyond librdkafka's range
--- http_config
    kafka_producer_delivery_timeout 2000s;
    kafka_producer_linger 0 idempotent=1000s;
--- config eval: $::Config
--- must_die
--- error_log eval
qr/invalid librdkafka property "linger.ms" = "1000000": .*range/



=== TEST 30: kafka_producer_linger: idempotent= not below the delivery timeout
--- http_config
    kafka_producer_delivery_timeout 5s;
    kafka_producer_linger 1ms idempotent=5s;
--- config eval: $::Config
--- must_die
--- error_log
the linger time (5000 ms) must be less than the delivery timeout (5000 ms)



=== TEST 31: the linger librdkafka runs with, by default: plain 0, idempotent 1ms
--- config eval: $::Config . 'location = /health/detail { kafka_producer_health detail; }'
--- request eval
["POST /api/v1/send?mode=plain&eventId=cfg-31a",
 "POST /api/v1/send?mode=idempotent&eventId=cfg-31b",
 "GET /health/detail"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/"partition"/, qr/"partition"/,
 qr/"plain":\{[^{}]*"lingerMs":0,.*"idempotent":\{[^{}]*"lingerMs":1,/]



=== TEST 32: the linger librdkafka runs with, one time for both producers
--- http_config
    kafka_producer_linger 5ms;
--- config eval: $::Config . 'location = /health/detail { kafka_producer_health detail; }'
--- request eval
["POST /api/v1/send?mode=plain&eventId=cfg-32a",
 "POST /api/v1/send?mode=idempotent&eventId=cfg-32b",
 "GET /health/detail"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/"partition"/, qr/"partition"/,
 qr/"plain":\{[^{}]*"lingerMs":5,.*"idempotent":\{[^{}]*"lingerMs":5,/]



=== TEST 33: the linger librdkafka runs with, idempotent= for the idempotent producer
--- http_config
    kafka_producer_linger 2ms idempotent=0;
--- config eval: $::Config . 'location = /health/detail { kafka_producer_health detail; }'
--- request eval
["POST /api/v1/send?mode=plain&eventId=cfg-33a",
 "POST /api/v1/send?mode=idempotent&eventId=cfg-33b",
 "GET /health/detail"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/"partition"/, qr/"partition"/,
 qr/"plain":\{[^{}]*"lingerMs":2,.*"idempotent":\{[^{}]*"lingerMs":0,/]



=== TEST 34: the linger librdkafka runs with, kafka_producer_option linger.ms applies to both
--- http_config
    kafka_producer_linger 2ms idempotent=3ms;
    kafka_producer_option linger.ms 7;
--- config eval: $::Config . 'location = /health/detail { kafka_producer_health detail; }'
--- request eval
["POST /api/v1/send?mode=plain&eventId=cfg-34a",
 "POST /api/v1/send?mode=idempotent&eventId=cfg-34b",
 "GET /health/detail"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/"partition"/, qr/"partition"/,
 qr/"plain":\{[^{}]*"lingerMs":7,.*"idempotent":\{[^{}]*"lingerMs":7,/]



=== TEST 35: a nested kafka_producer_health does not inherit "detail" from its enclosing location
--- config
    location /health {
        kafka_producer_health detail;

        location = /health/live {
            kafka_producer_health;
        }
    }
--- request
GET /health/live
--- error_code: 200
--- response_body: OK



=== TEST 36: set_kafka_producer_state is refused at http level, where no rewrite phase runs it
--- http_config
    set_kafka_producer_state $st $arg_requestId;
--- config eval: $::Config
--- must_die
--- error_log
"set_kafka_producer_state" directive is not allowed here



=== TEST 37: set_kafka_producer_state works at server level
--- config
    set_kafka_producer_state $st $arg_requestId;

    location = /st {
        return 200 "state=[$st]";
    }
--- request
GET /st?requestId=00000000-0000-4000-8000-000000000000
--- error_code: 200
--- response_body: state=[]



=== TEST 38: the handlers are location directives only
--- config
    kafka_producer_send;
--- must_die
--- error_log
"kafka_producer_send" directive is not allowed here



=== TEST 39: the producers' settings are http-level only
--- config
    kafka_producer_delivery_timeout 5s;
    location = /api/v1/send {
        kafka_producer_send;
    }
--- must_die
--- error_log
"kafka_producer_delivery_timeout" directive is not allowed here



=== TEST 40: kafka_producer_health ready: 200 once every producer of the worker is connected
--- config eval: $::Config . "    location = /ready { kafka_producer_health ready; }\n"
--- request
GET /health
--- error_code: 404
--- test_code
my ($s, $h, $b);
for (1 .. 50) {
    ($s, $h, $b) = http_request('GET', '/ready');
    last if $s == 200;
    select undef, undef, undef, 0.1;
}
is($s, 200, 'ready') or diag($b);
like($b, qr/^\{"status":"READY","pid":\d+\}$/, 'READY');
kafka_mock('down all');
for (1 .. 80) {
    ($s, $h, $b) = http_request('GET', '/ready');
    last if $s == 503;
    select undef, undef, undef, 0.1;
}
kafka_mock('up all');
is($s, 503, 'not ready once no broker is connected') or diag($b);
like($b, qr/"detail":"not ready: the (plain|idempotent) producer is connected to no broker"/, 'says why');
is($h->{'content-type'}, 'application/problem+json', 'as problem+json');
--- no_kafka_check



=== TEST 41: kafka_producer_health ready without producers (no send location): 503
--- no_default_http_config
--- config
    location = /ready {
        kafka_producer_health ready;
    }
--- request
GET /ready
--- error_code: 503
--- response_body_like: "detail":"not ready: the plain producer is not available: this worker has no producers"



=== TEST 42: kafka_producer_pass: a literal topic that is not a Kafka topic name
--- config
    location = /p {
        kafka_producer_pass "bad topic";
    }
--- must_die
--- error_log
invalid Kafka topic name "bad topic"



=== TEST 43: kafka_producer_pass: a literal topic outside kafka_producer_allowed_topics
--- config
    kafka_producer_allowed_topics events;

    location = /p {
        kafka_producer_pass others;
    }
--- must_die
--- error_log
the topic "others" of "kafka_producer_pass" is not in "kafka_producer_allowed_topics"



=== TEST 44: kafka_producer_send_mode async requires a status zone
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
--- config
    location = /p {
        kafka_producer_pass       events;
        kafka_producer_send_mode  async;
    }
--- must_die
--- error_log
"kafka_producer_send_mode async" requires "kafka_producer_status_zone"



=== TEST 45: a sync kafka_producer_pass needs no status zone
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
--- config
    location = /p {
        kafka_producer_pass  events-nozone;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($s, $h, $b) = http_request('POST', '/p', 'hello');
is($s, 200, 'status 200') or diag($b);
my ($p, $o) = $b =~ /^\{"topic":"events-nozone","partition":(\d+),"offset":(\d+),"timestamp":\d+\}$/;
ok(defined $o, 'topic, partition, offset, timestamp');
is(kafka_raw_at('events-nozone', $p, $o, '%s'), 'hello', 'the record is in the topic');
--- no_kafka_check



=== TEST 46: kafka_producer_header: a name with a space
--- config
    location = /p {
        kafka_producer_pass    events;
        kafka_producer_header  "bad name"  x;
    }
--- must_die
--- error_log
invalid record header name "bad name": no spaces or control characters



=== TEST 47: kafka_producer_mode takes plain or idempotent
--- config
    location = /p {
        kafka_producer_pass  events;
        kafka_producer_mode  exactly-once;
    }
--- must_die
--- error_log
invalid value "exactly-once"



=== TEST 48: kafka_producer_idempotency_zone takes NAME:SIZE as the status zone does
--- http_config
    kafka_producer_idempotency_zone idem:1k;
--- config eval: $::Config
--- must_die
--- error_log
zone "idem:1k" is too small, the minimum is 32k



=== TEST 49: kafka_producer_metrics_topics is at least 1
--- http_config
    kafka_producer_metrics_topics 0;
--- config eval: $::Config
--- must_die
--- error_log
"kafka_producer_metrics_topics" must be from 1 to 10000, not 0
