# kafka_producer_rest: Confluent REST Proxy v2 produce (and Strimzi's
# bridge dialect).  Every record the answers report is read back from the
# broker at the partition and offset of its answer entry; refused requests
# are checked to have produced nothing.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use JSON::PP;
use MIME::Base64 qw(encode_base64);

my $JSON = JSON::PP->new->canonical;

# POST a v2 body; checks a 200 answer of n entries; returns the entries
sub rest_ok {
    my ($uri, $type, $body, $n, $label) = @_;
    my ($s, $h, $b) = http_request('POST', $uri, $body,
                                   headers => { 'Content-Type' => $type });
    is($s, 200, "$label: 200") or diag($b);
    is($h->{'content-type'}, 'application/vnd.kafka.v2+json', "$label: type");
    my $j = eval { decode_json($b) } || {};
    ok(exists $j->{key_schema_id} && !defined $j->{key_schema_id}
       && exists $j->{value_schema_id} && !defined $j->{value_schema_id},
       "$label: schema ids null");
    is(scalar @{ $j->{offsets} || [] }, $n, "$label: $n entries");
    return @{ $j->{offsets} || [] };
}

# a refused request: status, Confluent's error_code, problem+json
sub rest_refused {
    my ($uri, $type, $body, $status, $code, $label) = @_;
    my ($s, $h, $b) = http_request('POST', $uri, $body,
                                   headers => { 'Content-Type' => $type });
    is($s, $status, "$label: $status") or diag($b);
    like($h->{'content-type'} // '', qr{^application/problem\+json}, "$label: problem+json");
    my $j = eval { decode_json($b) } || {};
    is($j->{error_code}, $code, "$label: error_code $code");
    is($j->{status}, $status, "$label: status member");
    ok(length($j->{message} // '') > 0, "$label: message");
    return $j;
}

# the record of an answer entry: value, key (raw bytes) and headers
sub record_is {
    my ($topic, $e, $value, $key, $headers, $label) = @_;
    ok(defined $e->{partition} && defined $e->{offset}, "$label: delivered")
        or return diag($JSON->encode($e));
    my $v = kafka_raw_at($topic, $e->{partition}, $e->{offset}, '%s');
    ok($v eq $value, "$label: value byte for byte") or diag("got '$v'");
    if (defined $key) {
        my $k = kafka_raw_at($topic, $e->{partition}, $e->{offset}, '%k');
        ok($k eq $key, "$label: key byte for byte") or diag("got key '$k'");
    } else {
        my $r = kafka_record_at($topic, $e->{partition}, $e->{offset});
        ok($r && !defined $r->{key}, "$label: null key");
    }
    if ($headers) {
        my $r = kafka_record_at($topic, $e->{partition}, $e->{offset});
        is_deeply($r->{headers_map} || {}, $headers, "$label: headers");
    }
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: json format: values and keys as JSON text, numbers as written, answers in request order
--- workers: 1
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-json
--- error_code: 405
--- test_code
my $body = '{"records":[{"key":"k1","value":{"a":1,"b":[true,null,1.50,"x\u00e9"]}},'
         . '{"value":"plain string"},{"key":{"id":7},"value":12345678901234567890},'
         . '{"value":null}]}';
my @e = main::rest_ok('/rest/topics/rest-json', 'application/vnd.kafka.json.v2+json',
                      $body, 4, 'json');
main::record_is('rest-json', $e[0], "{\"a\":1,\"b\":[true,null,1.50,\"x\xc3\xa9\"]}", '"k1"', undef, 'record 0');
main::record_is('rest-json', $e[1], '"plain string"', undef, undef, 'record 1');
main::record_is('rest-json', $e[2], '12345678901234567890', '{"id":7}', undef, 'record 2');
ok(defined $e[3]{offset}, 'record 3 (a null value) delivered');
my $r = kafka_record_at('rest-json', $e[3]{partition}, $e[3]{offset});
ok($r && !defined $r->{payload}, 'record 3: a tombstone (null value)');
is(kafka_count('rest-json'), 4, 'four records in the topic');
--- no_kafka_check



=== TEST 2: binary format: base64 key and value, NUL bytes kept; application/vnd.kafka.v2+json and application/json are json
--- workers: 1
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-bin
--- error_code: 405
--- test_code
my $v = join '', map { chr } (0 .. 255);
my $body = '{"records":[{"key":"' . MIME::Base64::encode_base64("\0key\xff", '')
         . '","value":"' . MIME::Base64::encode_base64($v, '') . '"},{"value":"aGVsbG8="}]}';
my @e = main::rest_ok('/rest/topics/rest-bin', 'application/vnd.kafka.binary.v2+json',
                      $body, 2, 'binary');
main::record_is('rest-bin', $e[0], $v, "\0key\xff", undef, 'binary 0');
main::record_is('rest-bin', $e[1], 'hello', undef, undef, 'binary 1');

@e = main::rest_ok('/rest/topics/rest-bin', 'application/vnd.kafka.v2+json; charset=utf-8',
                   '{"records":[{"value":{"x":"y"}}]}', 1, 'v2+json');
main::record_is('rest-bin', $e[0], '{"x":"y"}', undef, undef, 'v2+json');
@e = main::rest_ok('/rest/topics/rest-bin', 'application/json',
                   '{"records":[{"value":[1,2]}],"value_schema":"ignored"}', 1, 'application/json');
main::record_is('rest-bin', $e[0], '[1,2]', undef, undef, 'application/json');
is(kafka_count('rest-bin'), 4, 'four records');
--- no_kafka_check



=== TEST 3: Strimzi's text format with headers (base64 values), kafka_producer_header on every record
--- workers: 1
--- config
    location /bridge/ {
        kafka_producer_rest;
        kafka_producer_header  source  bridge;
        kafka_producer_header  tenant   $http_x_tenant;
    }
--- request
GET /bridge/topics/rest-text
--- error_code: 405
--- test_code
my $body = '{"records":[{"key":"order-1","value":"created \u00fc",'
         . '"headers":[{"key":"traceparent","value":"' . MIME::Base64::encode_base64('00-abc-01', '')
         . '"},{"key":"empty","value":""}]},{"value":"no headers"}]}';
my ($s, $h, $b) = http_request('POST', '/bridge/topics/rest-text', $body,
    headers => { 'Content-Type' => 'application/vnd.kafka.text.v2+json',
                 'X-Tenant' => 'acme' });
is($s, 200, 'text: 200') or diag($b);
my @e = @{ (eval { decode_json($b) } || {})->{offsets} || [] };
is(scalar @e, 2, 'two entries');
main::record_is('rest-text', $e[0], "created \xc3\xbc", 'order-1',
    { traceparent => '00-abc-01', empty => '', source => 'bridge', tenant => 'acme' }, 'text 0');
main::record_is('rest-text', $e[1], 'no headers', undef,
    { source => 'bridge', tenant => 'acme' }, 'text 1');
--- no_kafka_check



=== TEST 4: partitions: from the path (a record may repeat it), per record on the topic URI; a record naming another partition than the path's refuses the request
--- workers: 1
--- kafka_mock
topic rest-part 3
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-part/partitions/1
--- error_code: 405
--- test_code
my $T = 'application/vnd.kafka.text.v2+json';
my @e = main::rest_ok('/rest/topics/rest-part/partitions/1', $T,
    '{"records":[{"value":"p1"},{"value":"p1b","partition":1}]}',
    2, 'path partition');
is($e[0]{partition}, 1, 'record 0 in partition 1 (path)');
is($e[1]{partition}, 1, 'record 1 in partition 1 (path, repeated)');
main::record_is('rest-part', $e[$_], ('p1', 'p1b')[$_], undef, undef, "record $_") for 0 .. 1;
my $j = main::rest_refused('/rest/topics/rest-part/partitions/1', $T,
    '{"records":[{"value":"x1"},{"value":"x2","partition":2}]}', 422, 422, 'another partition');
like($j->{message} // '', qr/record 1 names partition 2/, 'the message names the record');
is(kafka_count('rest-part'), 2, 'nothing of the refused request produced');
@e = main::rest_ok('/rest/topics/rest-part', $T,
    '{"records":[{"value":"p2","partition":2},{"value":"p0","partition":0}]}',
    2, 'topic URI');
is($e[0]{partition}, 2, 'record 0 in partition 2 (its own)');
is($e[1]{partition}, 0, 'record 1 in partition 0 (its own)');
main::record_is('rest-part', $e[$_], ('p2', 'p0')[$_], undef, undef, "topic URI record $_") for 0 .. 1;
--- no_kafka_check



=== TEST 5: mixed success and failure in one batch: a partition that does not exist is 40402, the others are delivered, in request order
--- workers: 1
--- kafka_mock
topic rest-mixed 2
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-mixed
--- error_code: 405
--- test_code
my @e = main::rest_ok('/rest/topics/rest-mixed', 'application/vnd.kafka.text.v2+json',
    '{"records":[{"value":"first","partition":0},{"value":"lost","partition":7},'
    . '{"value":"third","partition":1}]}', 3, 'mixed');
main::record_is('rest-mixed', $e[0], 'first', undef, undef, 'entry 0');
ok(!defined $e[1]{partition} && !defined $e[1]{offset}, 'entry 1: partition and offset null');
is($e[1]{error_code}, 40402, 'entry 1: 40402 partition not found');
like($e[1]{error} // '', qr/partition/i, 'entry 1: error text');
main::record_is('rest-mixed', $e[2], 'third', undef, undef, 'entry 2');
is(kafka_count('rest-mixed'), 2, 'two records written, none for partition 7');
--- no_kafka_check



=== TEST 6: 415 for any other Content-Type, 405, 404 outside the produce URIs, 403 outside allowed_topics: nothing produced
--- workers: 1
--- config
    location /rest/ {
        kafka_producer_rest;
        kafka_producer_allowed_topics rest-ok ~^rest-re-;
    }
--- request
POST /rest/topics/rest-ok
{"records":[{"value":1}]}
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- response_headers
Content-Type: application/problem+json
--- test_code
main::rest_refused('/rest/topics/rest-ok', 'application/vnd.kafka.avro.v2+json',
                   '{"records":[{"value":1}]}', 415, 415, 'avro');
main::rest_refused('/rest/topics/rest-ok', '', '{"records":[{"value":1}]}', 415, 415, 'no type');
main::rest_refused('/rest/topics/rest-no', 'application/json', '{"records":[{"value":1}]}',
                   403, 40301, 'not allowed');
main::rest_refused('/rest/topics/bad%20name', 'application/json', '{"records":[{"value":1}]}',
                   404, 40401, 'invalid topic name');
main::rest_refused('/rest/topics/rest-ok/partitions/x', 'application/json',
                   '{"records":[{"value":1}]}', 404, 40402, 'partition not a number');
main::rest_refused('/rest/other', 'application/json', '{"records":[{"value":1}]}',
                   404, 404, 'not a produce URI');
my ($s, $h) = http_request('GET', '/rest/topics/rest-ok');
is($s, 405, 'GET: 405');
is($h->{allow}, 'POST', 'Allow: POST');
my @e = main::rest_ok('/rest/topics/rest-re-1', 'application/json',
                      '{"records":[{"value":1}]}', 1, 'regex allowed');
main::record_is('rest-re-1', $e[0], '1', undef, undef, 'regex allowed');
is(kafka_count('rest-ok'), 0, 'nothing produced to rest-ok');
is(kafka_count('rest-no'), 0, 'nothing produced to rest-no');
--- no_kafka_check



=== TEST 7: bodies refused whole with 400 or 422 and Confluent's codes: nothing of them is produced
--- workers: 1
--- config
    location /rest/ {
        kafka_producer_rest;
        kafka_producer_rest_max_records 3;
    }
--- request
POST /rest/topics/rest-bad
{"records":[]}
--- more_headers
Content-Type: application/vnd.kafka.json.v2+json
--- error_code: 422
--- test_code
my $J = 'application/vnd.kafka.json.v2+json';
my $B = 'application/vnd.kafka.binary.v2+json';
my $T = 'application/vnd.kafka.text.v2+json';
my $ok = '{"value":"fine"}';
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ',', 400, 400, 'truncated JSON');
main::rest_refused('/rest/topics/rest-bad', $J, '', 400, 400, 'empty body');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ']} x', 400, 400, 'trailing garbage');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . '],"records":[]}', 400, 400, 'duplicate key');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[{"value":{"a":1,"a":2}}]}', 400, 400, 'duplicate key in a value');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[{"value":' . ('[' x 70) . (']' x 70) . '}]}', 400, 400, 'too deep');
main::rest_refused('/rest/topics/rest-bad', $J, "{\"records\":[{\"value\":\"\xc0\xaf\"}]}", 400, 400, 'overlong UTF-8');
main::rest_refused('/rest/topics/rest-bad', $J, "{\"records\":[{\"value\":\"\xed\xa0\x80\"}]}", 400, 400, 'surrogate UTF-8');
# lone UTF-16 surrogate escapes: YAJL alone would produce them as '?'
for my $esc ('\ud800', '\udc00', '\uDBFF\u0041', '\ud800x', 'a\ud800', '\udfff\ud800', '\ud800\ud800') {
    main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ',{"value":"' . $esc . '"}]}',
                       400, 400, "lone surrogate escape $esc (json)");
    main::rest_refused('/rest/topics/rest-bad', $T, '{"records":[{"key":"' . $esc . '","value":"x"}]}',
                       400, 400, "lone surrogate escape $esc (text key)");
}
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . '],"x\udc00":1}', 400, 400, 'lone surrogate in a member name');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ',{"value":1,"partition":1.5}]}', 422, 422, 'partition not an integer');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ',{"value":1,"partition":-1}]}', 422, 422, 'negative partition');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ',{"value":1,"partition":2147483648}]}', 422, 422, 'partition too large');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . join(',', ($ok) x 4) . ']}', 422, 422, 'more than max records');
main::rest_refused('/rest/topics/rest-bad', $J, '{"values":[' . $ok . ']}', 422, 422, 'no records member');
main::rest_refused('/rest/topics/rest-bad', $J, '[' . $ok . ']', 422, 422, 'an array body');
main::rest_refused('/rest/topics/rest-bad', $J, '{"records":[' . $ok . ',"x"]}', 422, 422, 'a record not an object');
main::rest_refused('/rest/topics/rest-bad', $B, '{"records":[{"value":"aGVsbG8="},{"value":"not base64!"}]}', 422, 42203, 'invalid base64');
main::rest_refused('/rest/topics/rest-bad', $B, '{"records":[{"value":"aGVsbG8="},{"value":{"a":1}}]}', 422, 42203, 'binary value not a string');
main::rest_refused('/rest/topics/rest-bad', $T, '{"records":[{"value":"x","headers":[{"key":"h","value":"%%%"}]}]}', 422, 42203, 'header value not base64');
main::rest_refused('/rest/topics/rest-bad', $T, '{"records":[{"value":"x","headers":[{"value":"aA=="}]}]}', 422, 422, 'header without key');
# strict base64 (RFC 4648): nginx's decoder alone stops at the first '='
for my $b64 ('QQ==garbage!!', 'QQ==QQ==', 'QQ=A', 'QQ', 'QUJD=', 'Q===', '=QUJ') {
    main::rest_refused('/rest/topics/rest-bad', $B, '{"records":[{"value":"aGVsbG8="},{"value":"' . $b64 . '"}]}',
                       422, 42203, "value \"$b64\" not strict base64");
    main::rest_refused('/rest/topics/rest-bad', $T, '{"records":[{"value":"x","headers":[{"key":"h","value":"' . $b64 . '"}]}]}',
                       422, 42203, "header value \"$b64\" not strict base64");
}
main::rest_refused('/rest/topics/rest-bad', $T, '{"records":[{"value":"x","key":"' . ('k' x 1025) . '"}]}', 422, 422, 'key too long');
is(kafka_count('rest-bad'), 0, 'nothing produced to rest-bad');
--- no_kafka_check



=== TEST 8: ?async=true: 204 at once, the records are in the topic afterwards
--- workers: 1
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
POST /rest/topics/rest-async?async=true
{"records":[{"key":"a","value":"one"},{"key":"a","value":"two"},{"key":"a","value":"three"}]}
--- more_headers
Content-Type: application/vnd.kafka.text.v2+json
--- error_code: 204
--- response_body
--- test_code
my @r;
for (1 .. 50) {
    @r = kafka_records('rest-async');
    last if @r >= 3;
    select undef, undef, undef, 0.1;
}
is(scalar @r, 3, 'three records');
# one key, one partition: the order of the request
is_deeply([ map { $_->{payload} } sort { $a->{offset} <=> $b->{offset} } @r ],
          [ 'one', 'two', 'three' ], 'in request order');
is_deeply([ map { $_->{key} } @r ], [ 'a', 'a', 'a' ], 'keys');
--- no_kafka_check



=== TEST 9: 1000 records in one request: 1000 answers in order, every one read back
--- workers: 1
--- kafka_mock
topic rest-many 2
--- config
    client_max_body_size 1m;

    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-many
--- error_code: 405
--- test_code
my $body = '{"records":[' . join(',', map { "{\"key\":\"k$_\",\"value\":\"v$_\"}" } 0 .. 999) . ']}';
my @e = main::rest_ok('/rest/topics/rest-many', 'application/vnd.kafka.text.v2+json',
                      $body, 1000, '1000 records');
my %at;
$at{"$_->{partition}/$_->{offset}"} = $_ for kafka_records('rest-many');
is(scalar keys %at, 1000, '1000 records in the topic');
my $bad = 0;
for my $i (0 .. 999) {
    my $r = $at{ ($e[$i]{partition} // '') . '/' . ($e[$i]{offset} // '') };
    $bad++ unless $r && $r->{payload} eq "v$i" && $r->{key} eq "k$i";
}
is($bad, 0, 'every answer entry names its own record');
--- no_kafka_check



=== TEST 10: the plain producer with kafka_producer_mode plain; the idempotent one by default (nginx -t accepts both)
--- workers: 1
--- config
    location /plain/ {
        kafka_producer_rest;
        kafka_producer_mode plain;
    }
--- request
POST /plain/topics/rest-plain
{"records":[{"value":"p"}]}
--- more_headers
Content-Type: application/vnd.kafka.text.v2+json
--- error_code: 200
--- response_body_like: ^\{"key_schema_id":null,"value_schema_id":null,"offsets":\[\{"partition":\d+,"offset":0\}\]\}$
--- test_code
is(kafka_count('rest-plain'), 1, 'one record');
--- no_kafka_check



=== TEST 11: kafka_producer_rest_max_records out of range is refused by nginx -t
--- config
    location /rest/ {
        kafka_producer_rest;
        kafka_producer_rest_max_records 0;
    }
--- must_die
--- error_log
value must be between 1 and 100000



=== TEST 12: kafka_producer_rest takes no arguments and is one content handler per location
--- config
    location /rest/ {
        kafka_producer_rest;
        kafka_producer_pass some-topic;
    }
--- must_die
--- error_log
"kafka_producer_pass" directive is duplicate



=== TEST 13: all brokers down: every record of the batch gets its own 50003 entry, nothing is written
--- workers: 1
--- http_config
    kafka_producer_delivery_timeout 2s;
--- kafka_mock
down all
--- kafka_mock_after
up all
--- config
    location /rest/ {
        kafka_producer_rest;
        kafka_producer_mode plain;
    }
--- request
POST /rest/topics/rest-down
{"records":[{"value":"a"},{"value":"b","partition":1}]}
--- more_headers
Content-Type: application/vnd.kafka.text.v2+json
--- error_code: 200
--- response_body_like: ^\{"key_schema_id":null,"value_schema_id":null,"offsets":\[\{"partition":null,"offset":null,"error_code":50003,"error":"[^"]+"\},\{"partition":null,"offset":null,"error_code":50003,"error":"[^"]+"\}\]\}$
--- test_code
my ($s, $h, $b);
for (1 .. 20) {
    ($s, $h, $b) = http_request('POST', '/rest/topics/rest-down',
        '{"records":[{"value":"after"}]}',
        headers => { 'Content-Type' => 'application/vnd.kafka.text.v2+json' });
    last if $s == 200 && $b =~ /"offset":\d/;
    sleep 0.5;
}
my $e = (eval { decode_json($b) } || {})->{offsets}[0] || {};
main::record_is('rest-down', $e, 'after', undef, undef, 'after recovery');
is(kafka_count('rest-down'), 1, 'only the record sent after recovery');
--- no_kafka_check



=== TEST 14: a client that goes away while its batch is in flight: no crash, every record delivered, the reports only logged
--- workers: 1
--- kafka_mock
rtt 1 1000
rtt 2 1000
rtt 3 1000
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-gone
--- error_code: 405
--- test_code
my $s = http_start('POST', '/rest/topics/rest-gone',
    '{"records":[{"value":"g1"},{"value":"g2"},{"value":"g3"}]}',
    headers => { 'Content-Type' => 'application/vnd.kafka.text.v2+json' });
select undef, undef, undef, 0.2;
close $s;
my $n = 0;
for (1 .. 30) {
    $n = kafka_count('rest-gone');
    last if $n == 3;
    select undef, undef, undef, 0.5;
}
is($n, 3, 'the three records are delivered');
kafka_mock("rtt $_ 0") for 1 .. 3;
my ($hs) = http_request('GET', '/rest/topics/rest-gone');
is($hs, 405, 'the worker answers');
--- wait: 1
--- error_log
delivered for a client that is gone
--- no_kafka_check



=== TEST 15: ?async=true with a full local queue: stops at the first record refused, the answer names the queued ones, a resend from there leaves no duplicate; Retry-After from the producer's state
--- workers: 1
--- http_config
    kafka_producer_option queue.buffering.max.messages 2;
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-qfull
--- error_code: 405
--- test_code
my $T = 'application/vnd.kafka.text.v2+json';
my @v = map { "q$_" } 0 .. 3;
my $body = '{"records":[' . join(',', map { "{\"key\":\"q\",\"value\":\"$_\"}" } @v) . ']}';
my ($s, $h, $rb) = http_request('POST', '/rest/topics/rest-qfull?async=true', $body,
                               headers => { 'Content-Type' => $T });
is($s, 503, 'a full queue: 503') or diag($rb);
my $j = eval { decode_json($rb) } || {};
is($j->{error_code}, 50003, 'error_code 50003');
is($j->{queued}, 2, 'queued: records 0 and 1') or diag($rb);
is($j->{not_queued}, 2, 'not_queued: records 2 and 3');
like($j->{message} // '', qr/records 0 to 1 of 4 were queued.*records 2 to 3 were not.*resend from record 2/,
     'the message says which');
# no report yet: a rate of 1/s, 2 queued messages: 2 s, not the fixed 1
is($h->{'retry-after'}, 2, 'Retry-After from the queue: ' . ($h->{'retry-after'} // 'none'));
my @r;
for (1 .. 50) {
    @r = kafka_records('rest-qfull');
    last if @r >= 2;
    select undef, undef, undef, 0.1;
}
select undef, undef, undef, 0.5;
@r = kafka_records('rest-qfull');
is_deeply([ map { $_->{payload} } sort { $a->{offset} <=> $b->{offset} } @r ],
          [ 'q0', 'q1' ], 'records 0 and 1 produced, 2 and 3 not');
# the client resends from "queued" on
$body = '{"records":[' . join(',', map { "{\"key\":\"q\",\"value\":\"$_\"}" } @v[$j->{queued} // 0 .. 3]) . ']}';
for (1 .. 50) {
    ($s, $h, $rb) = http_request('POST', '/rest/topics/rest-qfull?async=true', $body,
                                headers => { 'Content-Type' => $T });
    last if $s == 204;
    select undef, undef, undef, 0.2;
}
is($s, 204, 'the resend is queued') or diag($rb);
for (1 .. 50) {
    @r = kafka_records('rest-qfull');
    last if @r >= 4;
    select undef, undef, undef, 0.1;
}
is_deeply([ map { $_->{payload} } sort { $a->{offset} <=> $b->{offset} } @r ],
          [ 'q0', 'q1', 'q2', 'q3' ], 'each record once, in order');
--- no_kafka_check



=== TEST 16: escapes: a surrogate pair is one character, an escaped backslash before "u" is no escape; produced as UTF-8
--- workers: 1
--- config
    location /rest/ {
        kafka_producer_rest;
    }
--- request
GET /rest/topics/rest-esc
--- error_code: 405
--- test_code
my @e = main::rest_ok('/rest/topics/rest-esc', 'application/vnd.kafka.text.v2+json',
    '{"records":[{"value":"\ud83d\ude00 \uD83D\uDE00"},{"value":"\\\\ud800 \\\\udc00"},{"value":"\u00e9\u20ac\"\\\\"}]}',
    3, 'escapes');
main::record_is('rest-esc', $e[0], "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80", undef, undef, 'a surrogate pair');
main::record_is('rest-esc', $e[1], '\\ud800 \\udc00', undef, undef, 'escaped backslashes');
main::record_is('rest-esc', $e[2], "\xc3\xa9\xe2\x82\xac\"\\", undef, undef, 'other escapes');
@e = main::rest_ok('/rest/topics/rest-esc', 'application/vnd.kafka.json.v2+json',
    '{"records":[{"value":{"k\ud83d\ude00":"\ud83d\ude00"}}]}', 1, 'json');
main::record_is('rest-esc', $e[0], "{\"k\xf0\x9f\x98\x80\":\"\xf0\x9f\x98\x80\"}", undef, undef, 'json pair');
--- no_kafka_check
