# Sends in both modes, sync and async, read back from the broker.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';

our $Config = <<'_EOC_';
    location = /api/v1/send {
        kafka_producer_send;
    }

    location = /api/v1/status {
        kafka_producer_status;
    }

    location = /health {
        kafka_producer_health;
    }
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: sync, plain
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=send-1
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"eventId":"send-1","mode":"plain","sendMode":"sync","topic":"bhf-transactions","key":"send-1","partition":[0-2],"offset":\d+\}$



=== TEST 2: sync, idempotent (the lab's first curl)
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=send-2
--- error_code: 200
--- response_body_like: ^\{"eventId":"send-2","mode":"idempotent","sendMode":"sync","topic":"bhf-transactions","key":"send-2","partition":[0-2],"offset":\d+\}$



=== TEST 3: async, plain
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=send-3&sendMode=async
--- error_code: 202
--- response_headers_like
Location: /api/v1/status\?requestId=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}
--- response_body_like: ^\{"requestId":"[0-9a-f-]{36}","state":"PENDING","eventId":"send-3","mode":"plain","sendMode":"async","topic":"bhf-transactions","key":"send-3","partition":null\}$



=== TEST 4: async, idempotent
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=send-4&sendMode=async
--- error_code: 202
--- response_body_like: "state":"PENDING","eventId":"send-4","mode":"idempotent","sendMode":"async"



=== TEST 5: mode and sendMode are case-insensitive, answers are lower case
--- config eval: $::Config
--- request
POST /api/v1/send?mode=IdemPotent&eventId=send-5&sendMode=ASYNC
--- error_code: 202
--- response_body_like: "mode":"idempotent","sendMode":"async"



=== TEST 6: explicit key, topic and partition (sync)
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=send-6&key=customer-42&topic=other-topic&partition=1
--- error_code: 200
--- kafka_topic: other-topic
--- response_body_like: ^\{"eventId":"send-6","mode":"plain","sendMode":"sync","topic":"other-topic","key":"customer-42","partition":1,"offset":\d+\}$



=== TEST 7: explicit key, topic and partition (async): partition echoed
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=send-7&key=k7&topic=other-topic&partition=0&sendMode=async
--- error_code: 202
--- response_body_like: "topic":"other-topic","key":"k7","partition":0\}$



=== TEST 8: the same key goes to the same partition
--- config eval: $::Config
--- request eval
[map { "POST /api/v1/send?mode=plain&eventId=send-8-$_&key=same-key" } 1 .. 5]
--- error_code eval: [(200) x 5]
--- test_code
my @p;
for my $r (Test::KafkaProducer::kafka_records('bhf-transactions')) {
    push @p, $r->{partition}
        if ($r->{payload_json}{eventId} // '') =~ /^send-8-/;
}
is(scalar @p, 5, 'five records');
is(scalar(keys %{{ map { $_ => 1 } @p }}), 1, 'one partition for one key');



=== TEST 9: eventId with quotes, backslashes, control characters and UTF-8
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=send-9%22q%5Cb%0A%09%01%7F%C3%A9%E2%82%AC%F0%9F%98%80+sp
--- error_code: 200
--- response_body_like: "eventId":"send-9\\"q\\\\b\\n\\t\\u0001\x7f\x{c3}\x{a9}\x{e2}\x{82}\x{ac}\x{f0}\x{9f}\x{98}\x{80} sp"



=== TEST 10: eventId with JSON-looking text and a key with UTF-8 (async)
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=send-10%7D%2C%22x%22%3A%7B&key=cl%C3%A9&sendMode=async
--- error_code: 202
--- response_body_like: "eventId":"send-10\},\\"x\\":\{"



=== TEST 11: unknown query parameters are ignored, names are case-insensitive
--- config eval: $::Config
--- request
POST /api/v1/send?foo=bar&MODE=plain&eventid=send-11&x
--- error_code: 200
--- response_body_like: "eventId":"send-11"



=== TEST 12: default topic from kafka_producer_topic
--- config
    kafka_producer_topic other-topic;
    location = /api/v1/send {
        kafka_producer_send;
    }
    location = /api/v1/status {
        kafka_producer_status;
    }
--- request
POST /api/v1/send?mode=plain&eventId=send-12
--- kafka_topic: other-topic
--- error_code: 200
--- response_body_like: "topic":"other-topic"



=== TEST 13: kafka_producer_status_uri sets the Location
--- config
    location = /send {
        kafka_producer_status_uri /v2/status;
        kafka_producer_send;
    }
    location = /v2/status {
        kafka_producer_status;
    }
--- request
POST /send?mode=plain&eventId=send-13&sendMode=async
--- error_code: 202
--- response_headers_like
Location: /v2/status\?requestId=.+



=== TEST 14: health
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- response_body: OK
--- response_headers
Content-Type: text/plain



=== TEST 15: HEAD on health and status
--- config eval: $::Config
--- request eval
["HEAD /health", "HEAD /api/v1/status?requestId=00000000-0000-4000-8000-000000000000"]
--- error_code eval: [200, 404]
--- response_body eval: ['', '']



=== TEST 16: many sync sends on one keepalive-less worker, each read back
--- config eval: $::Config
--- request eval
[map { "POST /api/v1/send?mode=" . ($_ % 2 ? "plain" : "idempotent")
       . "&eventId=send-16-$_" } 1 .. 20]
--- error_code eval: [(200) x 20]



=== TEST 17: set_kafka_producer_state (ngx_devel_kit) reads the zone
--- config
    location = /api/v1/send {
        kafka_producer_send;
    }
    location = /api/v1/status {
        kafka_producer_status;
    }
    location = /state {
        set_kafka_producer_state $st $arg_requestId;
        return 200 "state=[$st]";
    }
--- request
POST /api/v1/send?mode=plain&eventId=send-17&sendMode=async
--- error_code: 202
--- final_code
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=send-17b&sendMode=async');
is($s, 202, 'second async send');
my ($id) = $b =~ /"requestId":"([^"]+)"/;
my $state;
for (1 .. 100) {
    (undef, undef, $state) = http_request('GET', "/state?requestId=$id");
    last if $state eq 'state=[OK]';
    select(undef, undef, undef, 0.1);
}
is($state, 'state=[OK]', 'state variable OK');
(undef, undef, $state) = http_request('GET', "/state?requestId=00000000-0000-4000-8000-000000000000");
is($state, 'state=[]', 'unknown requestId: empty');
(undef, undef, $state) = http_request('GET', "/state?requestId=nope");
is($state, 'state=[]', 'malformed requestId: empty');
