# The event loop under faults: slow brokers, lost brokers, clients that
# leave, reloads and graceful quits with messages in flight, several
# workers sharing the status zone, a full zone, a killed worker.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

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

sub pids_of_workers {
    my $master = nginx_pid();
    return grep { $_ } map { /(\d+)/ ? $1 : () } `pgrep -P $master`;
}


no_shuffle();
run_tests();

__DATA__

=== TEST 1: a sync send waits on a slow broker while /health on the same worker answers at once
--- kafka_mock
rtt 1 1500
rtt 2 1500
rtt 3 1500
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
my $s = http_start('POST', '/api/v1/send?mode=idempotent&eventId=fault-1');
sleep 0.3;
my ($hs, undef, $hb) = http_request('GET', '/health');
my $t0 = time;
($hs, undef, $hb) = http_request('GET', '/health');
my $health = time - $t0;
is($hs, 200, '/health answers while the send waits');
cmp_ok($health, '<', 0.5, '/health is not held up by the pending send');
my $t1 = time;
my ($status, $body, $raw) = http_finish($s);
my $waited = time - $t1 + 0.3;
is($status, 200, 'the sync send completes') or diag($raw);
cmp_ok($waited, '>', 1, 'the send did wait for the slow broker');
kafka_mock("rtt $_ 0") for 1 .. 3;
kafka_check_send('/api/v1/send?mode=idempotent&eventId=fault-1', $status,
                 {}, $body, label => 'slow sync send');



=== TEST 2: all brokers down: sync 503/504 within the delivery timeout, async ERROR, then recovery without reload
--- http_config
    kafka_producer_delivery_timeout 3s;
--- kafka_mock
down all
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=fault-2a",
 "POST /api/v1/send?mode=idempotent&eventId=fault-2b&sendMode=async"]
--- error_code eval: [503, 202]
--- timeout: 15
--- response_time_lt eval: [9, 9]
--- response_body_like eval
[qr/^\{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"delivery to topic \\"bhf-transactions\\" failed: Local: Message timed out \(all brokers are down\)","kafkaError":"_MSG_TIMED_OUT","persisted":"no"\}$/,
 qr/"state":"PENDING"/]
--- response_headers_like eval
["Retry-After: ([2-9]|10)", "Location: /api/v1/status.*"]
--- async_state eval: ['ERROR', 'ERROR']
--- kafka_count eval: [0, 0]
--- kafka_mock_before_check
up all
--- final_code
my $st = status_wait('/api/v1/status?requestId=' . '00000000-0000-4000-8000-000000000000', 0);
my ($s, $h, $b);
for (1 .. 20) {
    ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=fault-2c');
    last if $s == 200;
    sleep 0.5;
}
is($s, 200, 'sends succeed again once the brokers are back');
kafka_check_send('/api/v1/send?mode=plain&eventId=fault-2c', $s, $h, $b,
                 label => 'after recovery');
--- error_log
_ALL_BROKERS_DOWN
delivery to topic "bhf-transactions" failed (plain producer, not written): _MSG_TIMED_OUT



=== TEST 3: the async ERROR record names the error
--- http_config
    kafka_producer_delivery_timeout 2s;
--- kafka_mock
down all
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=fault-3&sendMode=async
--- error_code: 202
--- async_state: ERROR
--- kafka_count: 0
--- kafka_mock_before_check
up all
--- test_code
my (undef, undef, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=fault-3b&sendMode=async');
my ($id) = $b =~ /"requestId":"([^"]+)"/;
my $st = status_wait("/api/v1/status?requestId=$id", 10);
like($st, qr/^\{"requestId":"$id","state":"ERROR","eventId":"fault-3b","mode":"idempotent","sendMode":"async","topic":"bhf-transactions","key":"fault-3b","partition":null,"error":"_MSG_TIMED_OUT: Local: Message timed out","persisted":"no"\}$/,
     'ERROR record with librdkafka error');



=== TEST 4: a client that disconnects mid-send: no crash, the message is delivered and logged
--- kafka_mock
rtt 1 1000
rtt 2 1000
rtt 3 1000
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
for my $i (1 .. 5) {
    my $s = http_start('POST', "/api/v1/send?mode=" . ($i % 2 ? 'plain' : 'idempotent') . "&eventId=fault-4-$i");
    sleep 0.05;
    close $s;
}
my $end = time + 15;
my $n = 0;
while (time < $end) {
    $n = grep { kafka_count_event('bhf-transactions', "fault-4-$_") == 1 } 1 .. 5;
    last if $n == 5;
    sleep 0.5;
}
is($n, 5, 'every message of a departed client is delivered once');
my ($hs) = http_request('GET', '/health');
is($hs, 200, 'the worker is alive');
kafka_mock("rtt $_ 0") for 1 .. 3;
--- wait: 1
--- error_log
client prematurely closed connection
kafka_producer: delivered for a client that is gone: topic "bhf-transactions"



=== TEST 5: reload with PENDING async records: the zone is reused and the old worker delivers them
--- workers: 2
--- kafka_mock
rtt 1 1500
rtt 2 1500
rtt 3 1500
--- config eval: $::Config
--- request eval
[map { "POST /api/v1/send?mode=" . ($_ % 2 ? 'plain' : 'idempotent')
       . "&eventId=fault-5-$_&sendMode=async" } 1 .. 6]
--- error_code eval: [(202) x 6]
--- async_timeout: 30
--- test_code
my (undef, undef, $b) = http_request('GET', '/api/v1/status?requestId=00000000-0000-4000-8000-000000000000');
nginx_signal('reload');
sleep 1;
my ($s, $h, $b2) = http_request('POST', '/api/v1/send?mode=plain&eventId=fault-5-new&sendMode=async');
is($s, 202, 'new workers accept sends after the reload');
my $st = status_wait($h->{location}, 20);
like($st, qr/"state":"OK"/, 'a record created after the reload reaches OK');
--- kafka_mock_before_check
rtt 1 0
rtt 2 0
rtt 3 0
--- error_log
signal 1 (SIGHUP) received



=== TEST 6: graceful quit waits for a pending sync send
--- kafka_mock
rtt 1 1500
rtt 2 1500
rtt 3 1500
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
my $s = http_start('POST', '/api/v1/send?mode=plain&eventId=fault-6');
sleep 0.3;
nginx_signal('quit');
my ($status, $body, $raw) = http_finish($s);
is($status, 200, 'the pending send is answered during the graceful quit') or diag($raw);
ok(defined nginx_wait(10), 'nginx exits once the send is done');
kafka_mock("rtt $_ 0") for 1 .. 3;
is(kafka_count_event('bhf-transactions', 'fault-6'), 1, 'record delivered once');



=== TEST 7: status from several workers
--- workers: 4
--- init_code
my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1);
$ENV{TEST_NGINX_PORT2} = $sock->sockport;
close $sock;
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 reuseport;
        add_header X-Worker $pid always;
        location = /api/v1/status {
            kafka_producer_status;
        }
    }
--- config eval: $::Config
--- request eval
[map { "POST /api/v1/send?mode=plain&eventId=fault-7-$_&sendMode=async" } 1 .. 4]
--- error_code eval: [(202) x 4]
--- final_code
my (undef, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=fault-7-x&sendMode=async');
my ($id) = $b =~ /"requestId":"([^"]+)"/;
status_wait("/api/v1/status?requestId=$id", 10);
my %workers;
for (1 .. 24) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_PORT2}) or die;
    print $s "GET /api/v1/status?requestId=$id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    local $/;
    my $raw = <$s>;
    my ($w) = $raw =~ /X-Worker: (\d+)/;
    like($raw, qr/"state":"OK"/, "worker $w sees the record") if $_ <= 3;
    $workers{$w}++ if $w && $raw =~ /"state":"OK","eventId":"fault-7-x"/;
}
cmp_ok(scalar keys %workers, '>=', 2, 'the record is read from several workers')
    or diag(explain \%workers);



=== TEST 8: a full status zone answers 503 and never drops a PENDING record
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone small:32k;
--- kafka_mock
rtt 1 2000
rtt 2 2000
rtt 3 2000
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
my (@accepted, $refused, $refused_body, $refused_h);
for my $i (1 .. 1000) {
    my ($s, $h, $b) = http_request('POST', "/api/v1/send?mode=plain&eventId=fault-8-$i&sendMode=async");
    if ($s == 202) {
        push @accepted, ["fault-8-$i", $h->{location}];
        next;
    }
    ($refused, $refused_h, $refused_body) = ($s, $h, $b);
    last;
}
cmp_ok(scalar @accepted, '>', 10, scalar(@accepted) . ' async sends accepted');
is($refused, 503, 'then 503');
like($refused_body, qr/"detail":"the async status zone is full of pending records"/, 'zone full');
# the queue's drain time at its current rate, at most the delivery timeout
like($refused_h->{'retry-after'} // '', qr/^\d+$/, 'Retry-After: ' . ($refused_h->{'retry-after'} // 'none'));
cmp_ok($refused_h->{'retry-after'} // 0, '<=', 120, 'at most the delivery timeout');
kafka_mock("rtt $_ 0") for 1 .. 3;
is(async_delivered_once('bhf-transactions', \@accepted, 20), scalar @accepted,
   'every accepted record reached OK and is in Kafka once');
my ($s) = http_request('POST', '/api/v1/send?mode=plain&eventId=fault-8-after&sendMode=async');
is($s, 202, 'finished records are evicted to make room');
--- no_kafka_check
--- timeout: 30
--- error_log
kafka_producer_status_zone "small" is full of pending records



=== TEST 9: a worker killed with PENDING records: they read as ERROR, not PENDING forever
--- kafka_mock
rtt 1 3000
rtt 2 3000
rtt 3 3000
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=fault-9&sendMode=async
--- error_code: 202
--- async_state: ERROR
--- test_code
my (undef, $h) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=fault-9a&sendMode=async');
my (undef, undef, $b) = http_request('GET', $h->{location});
like($b, qr/"state":"PENDING"/, 'PENDING before the kill');
my @w = main::pids_of_workers();
is(scalar @w, 1, 'one worker');
kill 'KILL', @w;
sleep 1;
(undef, undef, $b) = http_request('GET', $h->{location});
like($b, qr/"state":"ERROR",.*"error":"_DESTROY: the worker that accepted the message exited without its delivery report","persisted":"possibly"\}$/,
     'ERROR once its worker is gone');
--- kafka_mock_before_check
rtt 1 0
rtt 2 0
rtt 3 0
--- final_code
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=fault-9b&sendMode=async');
is($s, 202, 'the new worker accepts sends');
my $st = status_wait($h->{location}, 10);
like($st, qr/"state":"OK"/, 'and delivers them');
--- error_log
[alert]
exited on signal 9
