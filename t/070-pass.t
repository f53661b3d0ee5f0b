# kafka_producer_pass: any location produces its request to Kafka.  The
# body, byte for byte (in memory, in a temporary file, chunked), or a
# complex value is the record's value; topic, key, partition and headers
# are nginx complex values.  Every record is read back from the broker at
# the partition and offset of the answer.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use JSON::PP;
use Digest::MD5 qw(md5_hex);

# POST $uri with $body and %headers; checks a 200 pass answer and returns
# the record's (partition, offset)
sub pass_ok {
    my ($uri, $body, $headers, $topic, $label) = @_;
    my ($s, $h, $b) = http_request('POST', $uri, $body, headers => $headers || {});
    is($s, 200, "$label: 200") or diag($b);
    my $j = eval { decode_json($b) } || {};
    is($j->{topic}, $topic, "$label: topic $topic");
    like($j->{offset} // '', qr/^\d+$/, "$label: an offset");
    like($j->{timestamp} // '', qr/^\d+$/, "$label: a timestamp");
    return ($j->{partition}, $j->{offset});
}

# the record at partition/offset: value, key and headers as kcat reads them
sub record_is {
    my ($topic, $p, $o, $value, $key, $headers, $label) = @_;
    my $v = kafka_raw_at($topic, $p, $o, '%s');
    is(length $v, length $value, "$label: value length " . length $value);
    ok($v eq $value, "$label: value byte for byte");
    my $r = kafka_record_at($topic, $p, $o);
    ok($r, "$label: record at $topic [$p] $o") or return;
    is($r->{key}, $key, "$label: key " . ($key // 'null'));
    is_deeply($r->{headers_map} || {}, $headers, "$label: headers");
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the raw body is the value, no envelope: sync answer with topic, partition, offset, timestamp
--- config
    location = /events {
        kafka_producer_pass events-raw;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($p, $o) = main::pass_ok('/events', '{"hello":"world"}', {}, 'events-raw', 'json body');
main::record_is('events-raw', $p, $o, '{"hello":"world"}', undef, {}, 'json body');
($p, $o) = main::pass_ok('/events', "plain text\n", { 'Content-Type' => 'text/plain' },
                         'events-raw', 'text body');
main::record_is('events-raw', $p, $o, "plain text\n", undef, {}, 'text body');
is(kafka_count('events-raw'), 2, 'two records');
--- no_kafka_check



=== TEST 2: a webhook receiver: delivery id as key, event type and traceparent as headers, an empty header left out
--- config
    location = /webhooks/github {
        kafka_producer_pass     webhooks;
        kafka_producer_key      $http_x_github_delivery;
        kafka_producer_header   event-type   $http_x_github_event;
        kafka_producer_header   traceparent  $http_traceparent;
        kafka_producer_header   tenant       $http_x_tenant;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my $body = '{"action":"opened","number":7}';
my ($p, $o) = main::pass_ok('/webhooks/github', $body,
    { 'X-GitHub-Delivery' => '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      'X-GitHub-Event' => 'pull_request',
      'traceparent' => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    'webhooks', 'webhook');
main::record_is('webhooks', $p, $o, $body, '72d3162e-cc78-11e3-81ab-4c9367dc0958',
    { 'event-type' => 'pull_request',
      'traceparent' => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    'webhook');
--- no_kafka_check



=== TEST 3: a binary body with NUL bytes is produced byte for byte
--- config
    location = /bin {
        kafka_producer_pass bin-topic;
        kafka_producer_key  fixed-key;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my $body = join '', map { chr } (0 .. 255, 0, 0, 255, 10, 13, 0);
my ($p, $o) = main::pass_ok('/bin', $body, { 'Content-Type' => 'application/octet-stream' },
                            'bin-topic', 'binary');
main::record_is('bin-topic', $p, $o, $body, 'fixed-key', {}, 'binary');
--- no_kafka_check



=== TEST 4: a 1 MiB body that nginx buffers to a temporary file is produced whole
--- http_config
    kafka_producer_option message.max.bytes 2000000;
--- config
    location = /big {
        client_body_buffer_size 16k;
        client_max_body_size 4m;
        kafka_producer_pass big-topic;
    }
--- request
GET /nothing
--- error_code: 404
--- timeout: 30
--- test_code
my $body = join '', map { sprintf "%08d\n", $_ } 1 .. (1048576 / 9);
$body .= 'x' x (1048576 - length $body);
my ($p, $o) = main::pass_ok('/big', $body, {}, 'big-topic', '1 MiB');
my $v = kafka_raw_at('big-topic', $p, $o, '%s');
is(length $v, 1048576, '1 MiB read back');
is(md5_hex($v), md5_hex($body), 'same bytes (md5)');
--- no_kafka_check
--- error_log
a client request body is buffered to a temporary file



=== TEST 5: a chunked request body
--- config
    location = /chunked {
        kafka_producer_pass chunked-topic;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => nginx_port(), Proto => 'tcp')
    or die "connect: $!";
print $s "POST /chunked HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
    . "Connection: close\r\n\r\n5\r\nhello\r\n7\r\n, chunk\r\n3\r\ned!\r\n0\r\n\r\n";
my $raw = do { local $/; <$s> };
close $s;
like($raw, qr{^HTTP/1\.1 200}, '200') or diag($raw);
my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;
my $j = decode_json($body);
main::record_is('chunked-topic', $j->{partition}, $j->{offset}, 'hello, chunked!', undef, {}, 'chunked');
--- no_kafka_check



=== TEST 6: topic, key and partition from the query string; a topic the allow-list refuses gets 403 and is never created
--- config
    location = /by-arg {
        kafka_producer_allowed_topics  ~^orders-[a-z]+$;
        kafka_producer_pass            $arg_topic;
        kafka_producer_key             $arg_id;
        kafka_producer_partition       $arg_p;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($p, $o) = main::pass_ok('/by-arg?topic=orders-eu&id=order-1&p=1', 'o1', {}, 'orders-eu', 'by arg');
is($p, 1, 'the partition of the query string');
main::record_is('orders-eu', $p, $o, 'o1', 'order-1', {}, 'by arg');
my ($s, $h, $b) = http_request('POST', '/by-arg?topic=payments&id=x', 'nope');
is($s, 403, 'a topic outside the allow-list: 403');
like($b, qr/"detail":"Forbidden: topic \\"payments\\" is not allowed here"/, 'says which');
is(kafka_count('payments'), 0, 'never created');
--- no_kafka_check



=== TEST 7: per-tenant topics from a map, and the default
--- http_config
    map $http_x_tenant $tenant_topic {
        default  tenants-other;
        acme     tenants-acme;
        globex   tenants-globex;
    }
--- config
    location = /collect {
        kafka_producer_pass    $tenant_topic;
        kafka_producer_header  tenant  $http_x_tenant;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
for my $t (qw(acme globex)) {
    my ($p, $o) = main::pass_ok('/collect', "e-$t", { 'X-Tenant' => $t }, "tenants-$t", $t);
    main::record_is("tenants-$t", $p, $o, "e-$t", undef, { tenant => $t }, $t);
}
my ($p, $o) = main::pass_ok('/collect', 'e-none', {}, 'tenants-other', 'no tenant');
main::record_is('tenants-other', $p, $o, 'e-none', undef, {}, 'no tenant');
--- no_kafka_check



=== TEST 8: record headers are inherited like add_header: from the server unless the location has its own
--- config
    kafka_producer_header  source  nginx-gw;
    kafka_producer_header  host    $host;

    location = /inherits {
        kafka_producer_pass hdr-topic;
    }

    location = /own {
        kafka_producer_pass    hdr-topic;
        kafka_producer_header  only  this;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($p, $o) = main::pass_ok('/inherits', 'a', {}, 'hdr-topic', 'inherited');
main::record_is('hdr-topic', $p, $o, 'a', undef, { source => 'nginx-gw', host => 'localhost' }, 'inherited');
($p, $o) = main::pass_ok('/own', 'b', {}, 'hdr-topic', 'own');
main::record_is('hdr-topic', $p, $o, 'b', undef, { only => 'this' }, 'own');
--- no_kafka_check



=== TEST 9: a GET pixel: the query string as the value, GET and HEAD accepted
--- config
    location = /pixel.gif {
        kafka_producer_pass   beacons;
        kafka_producer_value  $args;
        kafka_producer_header user-agent $http_user_agent;
    }
--- request
GET /pixel.gif?page=%2Fhome&ms=42
--- error_code: 200
--- response_body_like: ^\{"topic":"beacons","partition":\d+,"offset":\d+,"timestamp":\d+\}$
--- test_code
my ($s, $h, $b) = http_request('GET', '/pixel.gif?page=%2Fhome&ms=42',
                               undef, headers => { 'User-Agent' => 'pixel-test/1.0' });
my $j = decode_json($b);
main::record_is('beacons', $j->{partition}, $j->{offset}, 'page=%2Fhome&ms=42', undef,
                { 'user-agent' => 'pixel-test/1.0' }, 'pixel');
($s) = http_request('HEAD', '/pixel.gif?x=1');
is($s, 200, 'HEAD too');
is(kafka_count('beacons'), 3, 'three beacons');
--- no_kafka_check



=== TEST 10: async through the generic handler: 202, Location, the record reaches OK
--- config
    location = /async {
        kafka_producer_pass       async-topic;
        kafka_producer_send_mode  async;
        kafka_producer_key        $arg_k;
    }

    location = /api/v1/status {
        kafka_producer_status;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($s, $h, $b) = http_request('POST', '/async?k=k1', 'async body');
is($s, 202, 'status 202');
like($h->{location}, qr{^/api/v1/status\?requestId=[0-9a-f-]{36}$}, 'Location');
like($b, qr/^\{"requestId":"[0-9a-f-]{36}","state":"PENDING","topic":"async-topic","partition":null\}$/, 'PENDING');
my $st = status_wait($h->{location}, 10);
like($st, qr/"state":"OK"/, 'OK') or diag($st);
my $j = decode_json($st);
like($st, qr/"key":"k1"/, 'the status record has the key');
main::record_is('async-topic', $j->{partition}, $j->{offset}, 'async body', 'k1', {}, 'async');
--- no_kafka_check



=== TEST 11: kafka_producer_mode plain and idempotent (the default) choose the producer
--- config
    location = /plain {
        kafka_producer_pass  mode-topic;
        kafka_producer_mode  plain;
    }

    location = /idem {
        kafka_producer_pass  mode-topic;
    }

    location = /detail {
        kafka_producer_health detail;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($s, $h, $b) = http_request('GET', '/detail');
my $d0 = decode_json($b)->{producers};
my ($p, $o) = main::pass_ok('/plain', 'p', {}, 'mode-topic', 'plain');
main::record_is('mode-topic', $p, $o, 'p', undef, {}, 'plain');
($p, $o) = main::pass_ok('/idem', 'i', {}, 'mode-topic', 'idempotent');
main::record_is('mode-topic', $p, $o, 'i', undef, {}, 'idempotent');
($s, $h, $b) = http_request('GET', '/detail');
my $d1 = decode_json($b)->{producers};
is($d1->{plain}{delivered} - $d0->{plain}{delivered}, 1, 'one record by the plain producer');
is($d1->{idempotent}{delivered} - $d0->{idempotent}{delivered}, 1, 'one by the idempotent one');
--- no_kafka_check



=== TEST 12: bad input is a 400 problem+json and nothing is produced
--- config
    location = /bad {
        kafka_producer_pass       $arg_topic;
        kafka_producer_key        $arg_key;
        kafka_producer_partition  $arg_p;
        kafka_producer_header     h  $arg_h$arg_h;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my @cases = (
    ['/bad?topic=bad-input', '', 'Invalid: the request body is empty', 'empty body'],
    ['/bad?topic=', 'x', 'Invalid: the topic is not a Kafka topic name', 'empty topic'],
    ['/bad?topic=a%20b', 'x', 'Invalid: the topic is not a Kafka topic name', 'illegal topic'],
    ['/bad?topic=bad-input&p=two', 'x', 'Invalid: the partition must be an integer from 0 to 2147483647', 'partition not a number'],
    ['/bad?topic=bad-input&p=-1', 'x', 'Invalid: the partition must be an integer', 'negative partition'],
    ['/bad?topic=bad-input&p=2147483648', 'x', 'Invalid: the partition must be an integer', 'partition too large'],
    ['/bad?topic=bad-input&key=' . ('k' x 1025), 'x', 'Invalid: the key is longer than 1024 bytes', 'key too long'],
    ['/bad?topic=bad-input&h=' . ('v' x 4097), 'x', 'Invalid: the value of the record header \\"h\\" is longer than 8192 bytes', 'header too long'],
);
for my $c (@cases) {
    my ($uri, $body, $detail, $label) = @$c;
    my ($s, $h, $b) = http_request('POST', $uri, $body);
    is($s, 400, "$label: 400") or diag($b);
    is($h->{'content-type'}, 'application/problem+json', "$label: problem+json");
    like($b, qr/"detail":"\Q$detail\E/, "$label: detail");
}
my ($s, $h, $b) = http_request('GET', '/bad?topic=bad-input');
is($s, 405, 'GET without kafka_producer_value: 405');
is($h->{allow}, 'POST, PUT, PATCH', 'Allow');
is(kafka_count('bad-input'), 0, 'nothing was produced');
--- no_kafka_check



=== TEST 13: size limits: client_max_body_size is nginx's 413, a record over message.max.bytes a 413 problem+json that says the limit
--- http_config
    kafka_producer_option message.max.bytes 10000;
--- config
    location = /limited {
        client_max_body_size 64k;
        kafka_producer_pass limited-topic;
    }
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($s, $h, $b) = http_request('POST', '/limited', 'x' x 70000);
is($s, 413, 'over client_max_body_size: 413 by nginx');
($s, $h, $b) = http_request('POST', '/limited', 'y' x 20000);
is($s, 413, 'over message.max.bytes: 413');
like($b, qr/"detail":"the record for topic \\"limited-topic\\" is too large: 20000 bytes of value and 0 of key, the limit is message.max.bytes, 10000 bytes","kafkaError":"MSG_SIZE_TOO_LARGE","persisted":"no"/,
     'problem+json with the limit') or diag($b);
is(kafka_count('limited-topic'), 0, 'nothing was produced');
--- no_kafka_check
