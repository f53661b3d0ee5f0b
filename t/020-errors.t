# Bad requests: a clear problem+json answer, and nothing in Kafka.

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

our $Problem = qr/^\{"type":"about:blank","title":"Bad Request","status":400,"detail":"/;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: missing mode
--- config eval: $::Config
--- request
POST /api/v1/send?eventId=err-1
--- error_code: 400
--- response_headers
Content-Type: application/problem+json
--- response_body: {"type":"about:blank","title":"Bad Request","status":400,"detail":"Missing: mode (plain|idempotent)"}



=== TEST 2: missing eventId
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain
--- error_code: 400
--- response_body: {"type":"about:blank","title":"Bad Request","status":400,"detail":"Missing: eventId"}



=== TEST 3: blank eventId counts as missing
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=+%20%09
--- error_code: 400
--- response_body_like: "detail":"Missing: eventId"



=== TEST 4: unknown mode is refused, not treated as plain
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plainish&eventId=err-4
--- error_code: 400
--- response_body_like: "detail":"Invalid: mode must be plain or idempotent"



=== TEST 5: bad sendMode
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-5&sendMode=later
--- error_code: 400
--- response_body_like: "detail":"Invalid: sendMode must be sync or async"



=== TEST 6: negative partition
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-6&partition=-1
--- error_code: 400
--- response_body_like: "detail":"Invalid: partition must be an integer from 0 to 2147483647"



=== TEST 7: non-numeric partition
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-7&partition=1x
--- error_code: 400
--- response_body_like: "detail":"Invalid: partition



=== TEST 8: partition overflow
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-8&partition=2147483648",
 "POST /api/v1/send?mode=plain&eventId=err-8&partition=99999999999999999999"]
--- error_code eval: [400, 400]
--- response_body_like eval: [('"detail":"Invalid: partition') x 2]



=== TEST 9: illegal topic names
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-9&topic=bad%20topic",
 "POST /api/v1/send?mode=plain&eventId=err-9&topic=..",
 "POST /api/v1/send?mode=plain&eventId=err-9&topic=t%C3%A9",
 "POST /api/v1/send?mode=plain&eventId=err-9&topic=a/b",
 "POST /api/v1/send?mode=plain&eventId=err-9&topic=" . ("x" x 250)]
--- error_code eval: [(400) x 5]
--- response_body_like eval: [('"detail":"Invalid: topic must be 1 to 249 characters') x 5]



=== TEST 10: malformed percent-encoding
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-10%zz",
 "POST /api/v1/send?mode=plain&eventId=err-10%4",
 "POST /api/v1/send?mode=plain&eventId=err-10%"]
--- error_code eval: [400, 400, 400]
--- response_body_like eval
[('"detail":"Invalid: eventId has a malformed percent-encoding"') x 3]



=== TEST 11: %00 in any field
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-11%00",
 "POST /api/v1/send?mode=plain&eventId=err-11&key=a%00b",
 "POST /api/v1/send?mode=plain%00&eventId=err-11"]
--- error_code eval: [400, 400, 400]
--- response_body_like eval
[qr/"detail":"Invalid: eventId contains a NUL byte \(%00\)"/,
 qr/"detail":"Invalid: key contains a NUL byte/,
 qr/"detail":"Invalid: mode contains a NUL byte/]



=== TEST 12: repeated parameter
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-12&eventId=err-12b
--- error_code: 400
--- response_body_like: "detail":"Repeated: eventId"



=== TEST 13: eventId and key limits (512 bytes), invalid UTF-8
The last four were found by the fuzzer (fuzz/): a UTF-16 surrogate, a lead
byte followed by a lead byte, a 5-byte form and an overlong "/".
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-13" . ("x" x 507),
 "POST /api/v1/send?mode=plain&eventId=err-13b&key=" . ("k" x 513),
 "POST /api/v1/send?mode=plain&eventId=err-13c%C3",
 "POST /api/v1/send?mode=plain&eventId=err-13d&key=%FF",
 "POST /api/v1/send?mode=plain&eventId=err-13e%ED%A0%80",
 "POST /api/v1/send?mode=plain&eventId=err-13f%C3%C3",
 "POST /api/v1/send?mode=plain&eventId=err-13g&key=%F8%88%80%80",
 "POST /api/v1/send?mode=plain&eventId=err-13h%C0%AF"]
--- error_code eval: [(400) x 8]
--- response_body_like eval
[qr/eventId is longer than 512 bytes/, qr/key is longer than 512 bytes/,
 qr/eventId is not valid UTF-8/, qr/key is not valid UTF-8/,
 qr/eventId is not valid UTF-8/, qr/eventId is not valid UTF-8/,
 qr/key is not valid UTF-8/, qr/eventId is not valid UTF-8/]



=== TEST 14: eventId of exactly 512 bytes is accepted
--- config eval: $::Config
--- request eval
"POST /api/v1/send?mode=plain&eventId=err-14" . ("y" x 506)
--- error_code: 200



=== TEST 15: a request body is refused
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-15
{"some":"body"}
--- error_code: 400
--- response_body_like: "detail":"Invalid: a request body is not accepted



=== TEST 16: 405 with Allow on every handler
--- config eval: $::Config
--- request eval
["GET /api/v1/send?mode=plain&eventId=err-16",
 "PUT /api/v1/send?mode=plain&eventId=err-16",
 "POST /api/v1/status?requestId=00000000-0000-4000-8000-000000000000",
 "DELETE /health"]
--- error_code eval: [(405) x 4]
--- response_headers_like eval
["Allow: POST", "Allow: POST", "Allow: GET, HEAD", "Allow: GET, HEAD"]
--- response_body_like eval
[('^\\{"type":"about:blank","title":"Method Not Allowed","status":405,"detail":"method [A-Z]+ is not allowed, use') x 4]



=== TEST 17: unknown partition: 404 with librdkafka's error name
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-17&partition=99",
 "POST /api/v1/send?mode=idempotent&eventId=err-17b&partition=3"]
--- error_code eval: [404, 404]
--- response_headers eval: [('Content-Type: application/problem+json') x 2]
--- response_body_like eval
[('"title":"Not Found","status":404,"detail":"delivery to topic \\\\"bhf-transactions\\\\" failed: Local: Unknown partition","kafkaError":"_UNKNOWN_PARTITION"') x 2]



=== TEST 18: unknown partition, async: ERROR record, then 404 at once
The first send waits for the topic's metadata, so it is accepted and its
record ends in ERROR; once the partition count is known, librdkafka
refuses the next one when it is produced: 404 without a record.
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-18&partition=7&sendMode=async
--- error_code: 202
--- async_state: ERROR
--- kafka_count: 0
--- final_code
my ($s, $h, $b) = http_request('POST',
    '/api/v1/send?mode=plain&eventId=err-18c&topic=other-topic&partition=5&sendMode=async');
if ($s == 202) {
    my $st = '';
    for (1 .. 100) {
        (undef, undef, $st) = http_request('GET', $h->{location});
        last if $st !~ /"state":"PENDING"/;
        select(undef, undef, undef, 0.1);
    }
    like($st, qr/"state":"ERROR",.*"partition":5,"error":"_UNKNOWN_PARTITION: Local: Unknown partition","persisted":"no"\}$/,
         'the status record tells the partition and the error');
} else {
    is($s, 404, 'other-topic metadata already known: 404');
}
my ($s2, $h2, $b2) = http_request('POST',
    '/api/v1/send?mode=plain&eventId=err-18b&partition=7&sendMode=async');
is($s2, 404, 'second async send to the unknown partition: 404');
like($b2, qr/"kafkaError":"_UNKNOWN_PARTITION"/, 'with the error name');
is(kafka_count_event('bhf-transactions', 'err-18b'), 0, 'nothing produced');



=== TEST 19: unknown topic: 404
--- kafka_mock
topic-error no-such-topic-19 UNKNOWN_TOPIC_OR_PART
--- http_config
    kafka_producer_option topic.metadata.propagation.max.ms 500;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-19&topic=no-such-topic-19
--- error_code: 404
--- no_kafka_check
--- response_body_like: "status":404,.*"kafkaError":"(_UNKNOWN_TOPIC|UNKNOWN_TOPIC_OR_PART)"



=== TEST 20: status: missing, malformed, unknown requestId
--- config eval: $::Config
--- request eval
["GET /api/v1/status",
 "GET /api/v1/status?requestId=",
 "GET /api/v1/status?requestId=not-a-uuid",
 "GET /api/v1/status?requestId=00000000-0000-4000-8000-00000000000g",
 "GET /api/v1/status?requestId=00000000-0000-4000-8000-000000000000"]
--- error_code eval: [400, 400, 400, 400, 404]
--- response_body_like eval
[qr/"detail":"Missing: requestId"/, qr/"detail":"Missing: requestId"/,
 qr/"detail":"Invalid: requestId must be a UUID"/,
 qr/"detail":"Invalid: requestId must be a UUID"/,
 qr/^\{"type":"about:blank","title":"Not Found","status":404,"detail":"unknown or expired requestId"\}$/]



=== TEST 21: a location without our handler is not touched
--- config eval: $::Config . "location = /other { return 200 'other'; }"
--- request
GET /other
--- error_code: 200
--- response_body: other



=== TEST 22: an optional parameter given empty is refused, not defaulted
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-22&topic=",
 "POST /api/v1/send?mode=plain&eventId=err-22&key=",
 "POST /api/v1/send?mode=plain&eventId=err-22&partition=",
 "POST /api/v1/send?mode=plain&eventId=err-22&sendMode="]
--- error_code eval: [(400) x 4]
--- response_body_like eval
[qr/${main::Problem}Invalid: topic is empty, omit it for the default"\}$/,
 qr/"detail":"Invalid: key is empty, omit it for the default"/,
 qr/"detail":"Invalid: partition is empty, omit it for the default"/,
 qr/"detail":"Invalid: sendMode is empty, omit it for the default"/]



=== TEST 23: huge query strings: a 400 from the module within nginx's limit, nginx's own 414 beyond it
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=" . ("e" x 6000),
 "POST /api/v1/send?mode=plain&eventId=err-23&key=" . ("%41" x 2000),
 "POST /api/v1/send?mode=plain&eventId=err-23&junk=" . ("j" x 9000)]
--- error_code eval
[400, 400, 414]
--- response_body_like eval
[qr/"detail":"Invalid: eventId is longer than 512 bytes"/,
 qr/"detail":"Invalid: key is longer than 512 bytes"/,
 qr/414 Request-URI Too Large/]
--- test_code
my ($s) = http_request('GET', '/health');
is($s, 200, 'the worker is alive');



=== TEST 24: a partition with leading zeros is that number (fuzzer finding)
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=err-24&partition=00000000001
--- error_code: 200
--- response_body_like: "partition":1,"offset":\d+\}



=== TEST 25: client input never forges an error-log line: an eventId with a newline and a fake [emerg] line is escaped, a long one cut
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=err-25-warm",
 "POST /api/v1/send?mode=plain&partition=2147483647&eventId=x%0A2030/01/01%2000:00:00%20%5Bemerg%5D%201%231:%20forged",
 "POST /api/v1/send?mode=plain&partition=2147483647&eventId=" . ("L" x 500)]
--- error_code eval
[200, 404, 404]
--- test_code
open my $f, '<', nginx_prefix() . '/logs/error.log' or die;
my @forged = grep { /^2030\/01\/01/ } <$f>;
close $f;
is(scalar @forged, 0, 'no log line starts with the client\'s text');
# the only "[emerg]" in the log is the escaped one, inside the quotes
my @emerg = grep { /\[emerg\]/ && !/eventId "x\\n2030/ } do {
    open my $g, '<', nginx_prefix() . '/logs/error.log' or die; <$g> };
is(scalar @emerg, 0, 'no real [emerg] line');
--- error_log eval
[qr/cannot queue a record of \d+ bytes for topic "bhf-transactions", eventId "x\\n2030\/01\/01 00:00:00 \[emerg\] 1\#1: forged": _UNKNOWN_PARTITION/,
 qr/eventId "L{128}\.\.\.": _UNKNOWN_PARTITION/,
 "[emerg]"]



=== TEST 26: nginx's own errors on an API server are problem+json too (kafka_producer_problem in an internal location that error_page names)
--- config
    error_page 400 408 413 414 494 500 /_problem;

    location = /_problem {
        internal;
        kafka_producer_problem;
    }

    location = /api/v1/send {
        client_max_body_size 1k;
        kafka_producer_send;
    }
--- request
GET /nothing
--- error_code: 404
--- no_kafka_check
--- test_code
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=err-26', 'x' x 2048);
is($s, 413, 'a body over client_max_body_size: 413');
is($h->{'content-type'}, 'application/problem+json', 'as problem+json');
is($b, '{"type":"about:blank","title":"Payload Too Large","status":413,"detail":"the request body is larger than client_max_body_size"}', 'that says why');
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=' . ('u' x 9000));
is($s, 414, 'a request line over large_client_header_buffers: 414');
is($h->{'content-type'}, 'application/problem+json', 'as problem+json');
like($b, qr/^\{"type":"about:blank","title":"URI Too Long","status":414,"detail":"the request line is longer than large_client_header_buffers"\}$/, '414 detail');
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=err-26b', undef,
                            headers => "X-Big: " . ('h' x 9000) . "\r\n");
is($s, 400, 'a header over large_client_header_buffers: 400');
like($b, qr/^\{"type":"about:blank","title":"Bad Request","status":400,"detail":"(a request header is longer than large_client_header_buffers|nginx refused the request[^"]*)"\}$/, '494 as a 400 problem') or diag($b);
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=err-26c', 'ab',
                            headers => "Content-Length: 2\r\nContent-Length: 2\r\n");
is($s, 400, 'a duplicate Content-Length: 400');
is($h->{'content-type'}, 'application/problem+json', 'as problem+json');
is(kafka_count_event('bhf-transactions', 'err-26'), 0, 'nothing produced');



=== TEST 27: a refusal given before the body is read discards the body: a request hidden in it is never served (request smuggling)
--- config
    location = /api/v1/send {
        kafka_producer_send;
    }

    location /rest/ {
        kafka_producer_rest;
    }

    location = /smuggled {
        return 200 "smuggled\n";
    }
--- request
GET /smuggled
--- error_code: 200
--- no_kafka_check
--- test_code
use IO::Socket::INET;
my $inner = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
my @cases = (
    ['PUT /api/v1/send?mode=plain&eventId=err-27 HTTP/1.1', 405],
    ['POST /rest/nothere HTTP/1.1', 404],
    ['POST /rest/topics/t27 HTTP/1.1', 415],
);
for my $c (@cases) {
    my ($line, $status) = @$c;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => nginx_port(), Timeout => 5)
        or die "connect: $!";
    print $sock "$line\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
              . "Content-Length: " . length($inner) . "\r\n\r\n$inner";
    # a second request on the same connection: served, or the connection
    # is closed; never the hidden one
    print $sock "GET /smuggled?second HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n\r\n";
    my $all = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    while (my $n = sysread($sock, my $buf, 65536)) { $all .= $buf }
    alarm 0;
    close $sock;
    my @statuses = $all =~ m{^HTTP/1\.1 (\d+)}mg;
    is($statuses[0], $status, "$line: $status");
    cmp_ok(scalar @statuses, '<=', 2, "$line: at most the refusal and the second request");
    is($statuses[1] // 200, 200, "$line: the second request, if served, is the client's");
    my $smuggled = () = $all =~ /^smuggled$/mg;
    cmp_ok($smuggled, '<=', 1, "$line: the hidden request was not served") or diag($all);
}
is(kafka_count_event('bhf-transactions', 'err-27'), 0, 'nothing produced');
