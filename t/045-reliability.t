# Reliability under faults, as the lab teaches it: duplicates of a plain
# producer, latency and timeouts, broker loss and leader moves, a fatal
# idempotence error, backpressure, a full status zone, allowed topics,
# and the health detail that shows the producers' state.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use Time::HiRes qw(time sleep);

our $Config = <<'_EOC_';
    location = /api/v1/send {
        kafka_producer_send;
    }

    location = /api/v1/status {
        kafka_producer_status;
    }

    location = /health/detail {
        kafka_producer_health detail;
    }
_EOC_

# GET /health/detail, decoded
sub detail {
    my ($s, undef, $b) = http_request('GET', '/health/detail');
    die "health detail: $s $b" unless $s == 200;
    return Test::KafkaProducer::_decode_json($b);
}

# polls the health detail until code returns true, up to $timeout seconds
sub detail_until {
    my ($code, $timeout) = @_;
    my $d;
    my $end = time + ($timeout // 5);
    do {
        $d = detail();
        return $d if $code->($d);
        sleep 0.2;
    } while (time < $end);
    return $d;
}

# the health detail once the idempotent producer has its producer id
sub detail_with_pid {
    return detail_until(sub { defined $_[0]{producers}{idempotent}{producerId} }, 5);
}

# sends until the answer is 200 (after a fault is removed), up to 10 s
sub send_until_ok {
    my ($uri) = @_;
    my ($s, $h, $b);
    for (1 .. 20) {
        ($s, $h, $b) = http_request('POST', $uri);
        last if $s == 200;
        sleep 0.5;
    }
    return ($s, $h, $b);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: health detail: the idempotent producer has a producer id, counters per producer
--- kafka_mock_only: the mock's three brokers (t/060-kafka.t 4 checks the detail on Apache Kafka)
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=rel-1a",
 "POST /api/v1/send?mode=idempotent&eventId=rel-1b"]
--- error_code eval: [200, 200]
--- test_code
my $d = main::detail_with_pid();
is($d->{status}, 'UP', 'status UP');
like($d->{pid}, qr/^\d+$/, 'worker pid');
my ($p, $i) = @{$d->{producers}}{qw(plain idempotent)};
is($p->{idempotence}, 'disabled', 'plain producer: no idempotence');
is($i->{idempotence}, 'Assigned', 'idempotent producer: state Assigned');
cmp_ok($i->{producerId}, '>=', 0, "idempotent producer id $i->{producerId}");
is($i->{producerEpoch}, 0, 'epoch 0');
is($p->{delivered}, 1, 'plain: 1 delivered');
is($i->{delivered}, 1, 'idempotent: 1 delivered');
is($_->{inFlight}, 0, 'nothing in flight') for $p, $i;
is($_->{brokers}, 3, 'three brokers known') for $p, $i;
cmp_ok($_->{brokersUp}, '>=', 1, 'connected') for $p, $i;
is($_->{allBrokersDown}, JSON::PP::false, 'brokers up') for $p, $i;
like($p->{name}, qr/^nginx-kafka-producer#producer-\d+$/, 'librdkafka name');



=== TEST 2: a fatal idempotence error: the message fails cleanly, a fresh producer serves the next send
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=rel-7-warm&partition=0
--- error_code: 200
--- timeout: 30
--- test_code
my $before = main::detail_with_pid()->{producers}{idempotent};
kafka_mock('leader bhf-transactions 0 1');
kafka_mock('broker-error 1 Produce OUT_OF_ORDER_SEQUENCE_NUMBER 0 1');
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=rel-7a&partition=0');
is($s, 502, 'the message that hit the fatal error fails');
like($b, qr/"kafkaError":"OUT_OF_ORDER_SEQUENCE_NUMBER"/, 'with the error named');
is(kafka_count_event('bhf-transactions', 'rel-7a'), 0, 'and is not in Kafka');
my $uri = '/api/v1/send?mode=idempotent&eventId=rel-7b&partition=0';
($s, $h, $b) = main::send_until_ok($uri);
is($s, 200, 'the next idempotent send succeeds') or diag($b);
kafka_check_send($uri, $s, $h, $b, label => 'fresh producer');
my $after = main::detail_with_pid()->{producers}{idempotent};
is($after->{replaced}, 1, 'the idempotent producer was replaced once');
isnt($after->{name}, $before->{name}, "new librdkafka handle $after->{name}");
cmp_ok($after->{producerId}, '>=', 0, 'with a producer id');
is($after->{failed}, 1, 'one message failed');
(undef, undef, $b) = http_request('GET', '/health/detail');
like($b, qr/"plain":\{[^}]*"replaced":0/, 'the plain producer was not touched');
--- error_log
[alert]
fatal error in the idempotent producer, it will be replaced: OUT_OF_ORDER_SEQUENCE_NUMBER



=== TEST 3: duplicates, as the lab teaches: a late acknowledgement makes a plain send retry
--- http_config
    kafka_producer_option socket.timeout.ms 1000;
    kafka_producer_delivery_timeout 20s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=rel-2-warm&partition=0
--- error_code: 200
--- timeout: 60
--- test_code
# partition 0 on broker 1, whose next Produce is appended at once but
# acknowledged after 3 s, past the client's 1 s socket timeout
my %count;
for my $mode (qw(plain idempotent)) {
    kafka_mock("leader bhf-transactions 0 1");
    kafka_mock("broker-error 1 Produce NO_ERROR 3000 1");
    my $uri = "/api/v1/send?mode=$mode&eventId=rel-2-$mode&partition=0";
    my ($s, $h, $b) = http_request('POST', $uri);
    is($s, 200, "$mode: the send succeeds after a retry") or diag($b);
    kafka_check_send($uri, $s, $h, $b, label => "$mode send", count => '-');
    $count{$mode} = kafka_count_event('bhf-transactions', "rel-2-$mode");
}
cmp_ok($count{plain}, '>=', 2, "plain: the topic holds the record $count{plain} times");
# the mock cluster de-duplicates only transactional producers: what an
# idempotent producer gets from a real broker cannot be shown here
cmp_ok($count{idempotent}, '>=', 1, "idempotent: $count{idempotent} record(s) on the mock");
note("records: plain $count{plain}, idempotent $count{idempotent} (mock broker)");
my $d = main::detail_with_pid();
cmp_ok($d->{producers}{idempotent}{producerId}, '>=', 0, 'the idempotent producer has a producer id');
# the retry that wrote the duplicate, counted from librdkafka's statistics
# (txretries, refreshed every second)
$d = main::detail_until(sub { ($_[0]{producers}{plain}{retries} // 0) >= 1
                               && ($_[0]{producers}{idempotent}{retries} // 0) >= 1 }, 5);
cmp_ok($d->{producers}{plain}{retries} // -1, '>=', 1, "plain: retries $d->{producers}{plain}{retries} in the health detail");
cmp_ok($d->{producers}{idempotent}{retries} // -1, '>=', 1, "idempotent: retries $d->{producers}{idempotent}{retries}");



=== TEST 4: the lab's 5 s latency: sync sends wait and succeed, async reach OK, exactly once
--- http_config
    kafka_producer_delivery_timeout 30s;
--- config eval: $::Config
--- request eval
# connections and metadata first, as in the lab where the toxic is added
# to a running system: every round trip pays the latency
[map { ("POST /api/v1/send?mode=plain&eventId=rel-3-warm-p$_&partition=$_",
        "POST /api/v1/send?mode=idempotent&eventId=rel-3-warm-i$_&partition=$_") } 0 .. 2]
--- error_code eval: [(200) x 6]
--- timeout: 60
--- test_code
kafka_mock("rtt $_ 5000") for 1 .. 3;
my @done;
for my $mode (qw(plain idempotent)) {
    my $uri = "/api/v1/send?mode=$mode&eventId=rel-3-$mode";
    my $t0 = time;
    my ($s, $h, $b) = http_request('POST', $uri, undef, timeout => 40);
    my $took = time - $t0;
    is($s, 200, "$mode: sync send under a 5 s latency") or diag($b);
    cmp_ok($took, '>=', 4.5, sprintf("$mode: it waited for the broker (%.1f s)", $took));
    push @done, [$uri, $s, $h, $b];
}
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=rel-3-async&sendMode=async');
is($s, 202, 'async send accepted at once under latency');
my $st = status_wait($h->{location}, 20);
like($st, qr/"state":"OK"/, 'and reaches OK');
kafka_mock("rtt $_ 0") for 1 .. 3;
kafka_check_send(@$_, label => "latency $_->[0]") for @done;
is(kafka_count_event('bhf-transactions', 'rel-3-async'), 1, 'async record once');



=== TEST 5: the lab's timeout: a broker slower than the delivery timeout gives 504 and ERROR, then recovery
--- http_config
    kafka_producer_delivery_timeout 2s;
--- kafka_mock
rtt 1 5000
rtt 2 5000
rtt 3 5000
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=rel-4a",
 "POST /api/v1/send?mode=idempotent&eventId=rel-4b",
 "POST /api/v1/send?mode=plain&eventId=rel-4c&sendMode=async"]
--- error_code eval
[504, 504, 202]
--- response_time_lt eval: [8, 8, 8]
--- response_body_like eval
[qr/"status":504,.*"kafkaError":"_MSG_TIMED_OUT"/,
 qr/"status":504,.*"kafkaError":"_MSG_TIMED_OUT"/,
 qr/"state":"PENDING"/]
--- async_state eval: ['ERROR', 'ERROR', 'ERROR']
--- timeout: 20
--- kafka_count eval
# the mock appends at once and only answers late: a timed-out message
# may be in the log ("possibly persisted"), which is why 504 says "unknown"
["-", "-", "-"]
--- kafka_mock_before_check
rtt 1 0
rtt 2 0
rtt 3 0
--- final_code
my ($s, $h, $b) = main::send_until_ok('/api/v1/send?mode=idempotent&eventId=rel-4d');
is($s, 200, 'sends succeed once the latency is gone, without a reload') or diag($b);
kafka_check_send('/api/v1/send?mode=idempotent&eventId=rel-4d', $s, $h, $b, label => 'recovered');



=== TEST 6: one broker down: its partitions fail cleanly, the others work, a leader move recovers them
--- http_config
    kafka_producer_delivery_timeout 3s;
--- kafka_mock
leader bhf-transactions 0 1
leader bhf-transactions 1 2
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=rel-5-warm&partition=1
--- error_code: 200
--- timeout: 60
--- test_code
kafka_mock('down 1');
my @check;
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=rel-5a&partition=1');
is($s, 200, 'a partition led by a live broker works');
push @check, ['/api/v1/send?mode=plain&eventId=rel-5a&partition=1', $s, $h, $b];
for my $mode (qw(plain idempotent)) {
    ($s, undef, $b) = http_request('POST', "/api/v1/send?mode=$mode&eventId=rel-5b-$mode&partition=0");
    like($s, qr/^50[34]$/, "$mode: a partition led by the lost broker fails cleanly ($s)");
    like($b, qr/"kafkaError":"_MSG_TIMED_OUT"/, 'with the timeout named');
}
kafka_mock('leader bhf-transactions 0 2');
for my $mode (qw(plain idempotent)) {
    my $uri = "/api/v1/send?mode=$mode&eventId=rel-5c-$mode&partition=0";
    ($s, $h, $b) = main::send_until_ok($uri);
    is($s, 200, "$mode: the partition works again once its leader moved") or diag($b);
    push @check, [$uri, $s, $h, $b];
}
# the read-back needs every partition's leader
kafka_mock('up 1');
kafka_check_send(@$_, label => "broker loss $_->[0]") for @check;
--- kafka_mock_after
up 1



=== TEST 7: leader moved mid-stream: every async send reaches OK, exactly once
--- config eval: $::Config
--- request
GET /health/detail
--- error_code: 200
--- timeout: 60
--- test_code
my @sent;
for my $i (1 .. 60) {
    my $mode = $i % 2 ? 'plain' : 'idempotent';
    my ($s, $h) = http_request('POST', "/api/v1/send?mode=$mode&eventId=rel-6-$i&partition=0&sendMode=async");
    push @sent, [$i, $s, $h->{location}];
    kafka_mock('leader bhf-transactions 0 ' . (1 + ($i / 20) % 3)) if $i % 20 == 0;
    sleep 0.02;
}
is(scalar(grep { $_->[1] == 202 } @sent), 60, '60 accepted');
my $ok = 0;
for my $x (@sent) {
    my $st = status_wait($x->[2], 20);
    $ok++ if $st =~ /"state":"OK"/ && kafka_count_event('bhf-transactions', "rel-6-$x->[0]") == 1;
}
is($ok, 60, 'every record OK and in Kafka once across the leader moves');



=== TEST 8: backpressure: a full local queue answers 503 with Retry-After, then service resumes
--- http_config
    kafka_producer_option queue.buffering.max.messages 5;
--- kafka_mock
rtt 1 2000
rtt 2 2000
rtt 3 2000
--- config eval: $::Config
--- request
GET /health/detail
--- error_code: 200
--- timeout: 60
--- test_code
my (@accepted, $s, $h, $b, $max);
for my $i (1 .. 20) {
    ($s, $h, $b) = http_request('POST', "/api/v1/send?mode=plain&eventId=rel-8-$i&sendMode=async");
    last if $s != 202;
    push @accepted, ["rel-8-$i", $h->{location}];
}
is($s, 503, 'the queue full answer is 503');
# 5 queued messages at the drain rate (at least 1/s): 1 to 5 s
like($h->{'retry-after'} // '', qr/^[1-5]$/, 'with Retry-After: ' . ($h->{'retry-after'} // 'none'));
like($b, qr/"kafkaError":"_QUEUE_FULL"/, 'naming librdkafka\'s queue full');
cmp_ok(scalar @accepted, '<=', 5, scalar(@accepted) . ' accepted: bounded by queue.buffering.max.messages');
my $in_flight = main::detail()->{producers}{plain}{inFlight};
cmp_ok($in_flight, '<=', 5, "messages held by the worker: $in_flight");
kafka_mock("rtt $_ 0") for 1 .. 3;
is(async_delivered_once('bhf-transactions', \@accepted, 20), scalar @accepted,
   'every accepted send is delivered once');
my $uri = '/api/v1/send?mode=plain&eventId=rel-8-after';
($s, $h, $b) = http_request('POST', $uri);
is($s, 200, 'service resumes');
kafka_check_send($uri, $s, $h, $b, label => 'after backpressure');
is(kafka_count_event('bhf-transactions', "rel-8-" . (@accepted + 1)), 0, 'the refused send was not produced');



=== TEST 9: a full zone evicts finished records oldest first, never a PENDING one
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone tiny:32k ttl=1h;
--- config eval: $::Config
--- request
GET /health/detail
--- error_code: 200
--- timeout: 120
--- test_code
my @loc;
for my $i (1 .. 240) {
    my ($s, $h, $b) = http_request('POST', "/api/v1/send?mode=plain&eventId=rel-9-$i&sendMode=async");
    die "send $i: $s $b" unless $s == 202;
    push @loc, $h->{location};
    status_wait($h->{location}, 10);
}
my @present = map { my ($s) = http_request('GET', $loc[$_]); $s == 200 ? 1 : 0 } 0 .. $#loc;
my $n = grep { $_ } @present;
my $first = 0;
$first++ while $first < @present && !$present[$first];
cmp_ok($n, '<', 240, "the zone holds $n of 240 records");
cmp_ok($n, '>', 10, 'and a fair number');
is($first, 240 - $n, 'the evicted ones are the oldest');
is(scalar(grep { $_ } @present[$first .. $#present]), $n, 'the newest are all kept');
my (undef, undef, $b) = http_request('GET', $loc[0]);
like($b, qr/"status":404/, 'an evicted record answers 404');
--- no_kafka_check



=== TEST 10: kafka_producer_allowed_topics: other topics get 403 and are never created
--- http_config
    kafka_producer_allowed_topics bhf-transactions ~^rel10-[a-z]+$;
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=rel-10a",
 "POST /api/v1/send?mode=plain&eventId=rel-10b&topic=rel10-orders",
 "POST /api/v1/send?mode=plain&eventId=rel-10c&topic=rel10-forbidden-1",
 "POST /api/v1/send?mode=idempotent&eventId=rel-10d&topic=forbidden-topic&sendMode=async",
 "POST /api/v1/send?mode=plain&eventId=rel-10e&topic=Bhf-transactions"]
--- error_code eval
[200, 200, 403, 403, 403]
--- response_body_like eval
[qr/"offset"/, qr/"topic":"rel10-orders"/,
 qr/^\{"type":"about:blank","title":"Forbidden","status":403,"detail":"Forbidden: topic \\"rel10-forbidden-1\\" is not allowed here"\}$/,
 qr/"detail":"Forbidden: topic \\"forbidden-topic\\" is not allowed here"/,
 qr/"status":403/]
--- test_code
my $md = JSON::PP->new->decode(Test::KafkaProducer::_kcat('-L', '-b', kafka_bootstrap(), '-J'));
my @topics = map { $_->{topic} } @{ $md->{topics} };
for my $t (qw(rel10-forbidden-1 forbidden-topic Bhf-transactions)) {
    ok(!grep({ $_ eq $t } @topics), "topic $t was not created");
}
ok(grep({ $_ eq 'rel10-orders' } @topics), 'the allowed topic exists');
