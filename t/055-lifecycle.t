# What "nginx -t" accepts always runs: the producers are checked at
# configuration time as the workers build them, a worker that cannot
# create a producer stays up (503, retries with a backoff, readiness
# says why), the shutdown contract (graceful quit, stop,
# worker_shutdown_timeout) answers every waiting client with the
# persistence truth, and the status zone across reloads.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use JSON::PP;
use File::Spec;
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

    location = /health/ready {
        kafka_producer_health ready;
    }

    location = /health/detail {
        kafka_producer_health detail;
    }
_EOC_

# the fault injector of tools/rdkafka-fail-new.c (--- env LD_PRELOAD)
$ENV{TEST_NGINX_INJECT} = File::Spec->rel2abs(
    $ENV{TEST_NGINX_INJECT} || 'build/rdkafka-fail-new.so');

sub detail {
    my ($s, undef, $b) = http_request('GET', '/health/detail');
    die "health detail: $s $b" unless $s == 200;
    return decode_json($b);
}

# polls GET $uri until it answers $status, at most $timeout s
sub wait_status {
    my ($uri, $status, $timeout) = @_;
    my $end = time + $timeout;
    my ($s, $h, $b);
    while (time < $end) {
        ($s, $h, $b) = http_request('GET', $uri);
        return ($s, $h, $b) if $s == $status;
        sleep 0.1;
    }
    return ($s, $h, $b);
}

# rewrites the running nginx.conf with $edit (a code ref on its text)
sub edit_conf {
    my ($edit) = @_;
    my $f = nginx_prefix() . '/conf/nginx.conf';
    open my $in, '<', $f or die "$f: $!";
    my $c = do { local $/; <$in> };
    close $in;
    $c = $edit->($c);
    open my $out, '>', $f or die "$f: $!";
    print $out $c;
    close $out;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: "kafka_producer_option retries 0" (an alias the idempotent producer refuses) runs: both producers keep working
--- http_config
    kafka_producer_option retries 0;
--- config eval: $::Config
--- request eval
['POST /api/v1/send?mode=plain&eventId=life-1a',
 'POST /api/v1/send?mode=idempotent&eventId=life-1b']
--- error_code eval: [200, 200]
--- no_error_log eval
[qr/exited with code [1-9]/,
 'cannot create the']



=== TEST 2: nginx -t builds the idempotent producer too: what only it refuses stops the configuration
--- http_config
    kafka_producer_option queuing.strategy lifo;
--- config eval: $::Config
--- must_die
--- error_log eval
qr/librdkafka refuses the idempotent producer configuration: .*queuing\.strategy/



=== TEST 3: nginx -t checks files as the workers' user: a CA only root can read is refused
--- skip_eval: 1: $> != 0 || !`which openssl 2>/dev/null`
--- main_config
user nobody nogroup;
--- init_code
my $p = nginx_prefix();
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $p/ca.key -out $p/ca.pem -days 1 -subj /CN=test >/dev/null 2>&1") == 0
    or die "openssl failed";
chmod 0600, "$p/ca.pem";
chmod 0755, $p;
--- http_config
    kafka_producer_option security.protocol ssl;
    kafka_producer_option ssl.ca.location $TEST_NGINX_PREFIX/ca.pem;
--- config eval: $::Config
--- must_die
--- error_log eval
qr/librdkafka refuses the plain producer configuration: ssl\.ca\.location failed.* \(as user "nobody"\)/



=== TEST 4: the same CA readable by the workers' user passes nginx -t and the workers run their producers (UP, or BROKERS_DOWN once librdkafka finds that the plaintext brokers do not speak TLS)
--- skip_eval: 1: $> != 0 || !`which openssl 2>/dev/null`
--- main_config
user nobody nogroup;
--- init_code
my $p = nginx_prefix();
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $p/ca.key -out $p/ca.pem -days 1 -subj /CN=test >/dev/null 2>&1") == 0
    or die "openssl failed";
chmod 0644, "$p/ca.pem";
chmod 0755, $p;
--- http_config
    kafka_producer_option security.protocol ssl;
    kafka_producer_option ssl.ca.location $TEST_NGINX_PREFIX/ca.pem;
--- config eval: $::Config
--- request
GET /health/detail
--- error_code: 200
--- response_body_like: "plain":\{"name":"nginx-kafka-producer#producer-\d+","state":"(UP|BROKERS_DOWN)"
--- no_error_log eval
[qr/exited with code [1-9]/,
 'cannot create the']



=== TEST 5: a worker that cannot create its producers stays up: 503 naming the cause, readiness says not ready, then it recovers by itself
--- init_code
open my $f, '>', nginx_prefix() . '/fail-new' or die;
close $f;
--- env
LD_PRELOAD=$TEST_NGINX_INJECT
KAFKA_PRODUCER_FAIL_NEW=$TEST_NGINX_PREFIX/fail-new
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- response_body: OK
--- timeout: 30
--- test_code
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-5a');
is($s, 503, 'a send answers 503 while the producer cannot be created');
like($b, qr/"detail":"the plain producer is not available: Failed to create thread: Resource temporarily unavailable \(injected by rdkafka-fail-new\)"/,
     'the problem names the cause');
like($h->{'retry-after'} // '', qr/^\d+$/, 'with a Retry-After');
like($b, qr/"persisted":"no"/, 'nothing was written');
($s, $h, $b) = http_request('GET', '/health/ready');
is($s, 503, 'readiness: not ready');
like($b, qr/not ready: the plain producer is not available: Failed to create thread/, 'readiness says why');
my $d = main::detail()->{producers}{plain};
is($d->{state}, 'UNAVAILABLE', 'the detail shows the producer UNAVAILABLE');
like($d->{error}, qr/injected by rdkafka-fail-new/, 'with the error');
sleep 1.2;
my $d2 = main::detail()->{producers}{plain};
is($d2->{state}, 'UNAVAILABLE', 'still unavailable while the cause stays');
unlink nginx_prefix() . '/fail-new' or die;
($s, $h, $b) = main::wait_status('/health/ready', 200, 20);
is($s, 200, 'ready once the cause is gone, without a reload') or diag($b);
my $uri = '/api/v1/send?mode=plain&eventId=life-5b';
($s, $h, $b) = http_request('POST', $uri);
is($s, 200, 'sends work again') or diag($b);
kafka_check_send($uri, $s, $h, $b, label => 'after recovery');
is(kafka_count_event('bhf-transactions', 'life-5a'), 0, 'the refused send is not in Kafka');
--- error_log eval
['[alert]',
 'cannot create the plain producer: Failed to create thread',
 qr/kafka_producer: plain producer \S+ started after \d+ failed attempt\(s\)/]
--- no_error_log eval
qr/exited with code [1-9]/



=== TEST 6: a failed replacement after a fatal error is retried with a backoff, visible in the detail and readiness
--- env
LD_PRELOAD=$TEST_NGINX_INJECT
KAFKA_PRODUCER_FAIL_NEW=$TEST_NGINX_PREFIX/fail-new
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=life-6-warm&partition=0
--- error_code: 200
--- timeout: 30
--- test_code
open my $f, '>', nginx_prefix() . '/fail-new' or die;
close $f;
kafka_mock('leader bhf-transactions 0 1');
kafka_mock('broker-error 1 Produce OUT_OF_ORDER_SEQUENCE_NUMBER 0 1');
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=life-6a&partition=0');
is($s, 502, 'the message that hit the fatal error fails') or diag($b);
sleep 1.5;
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=life-6b&partition=0');
is($s, 503, 'the replacement failed: 503') or diag($b);
like($b, qr/the idempotent producer is not available: Failed to create thread/, 'naming the cause');
my $d = main::detail()->{producers}{idempotent};
is($d->{state}, 'REPLACING', 'the detail shows REPLACING');
like($d->{error}, qr/injected/, 'with the error of the last attempt');
cmp_ok($d->{retryInMs}, '>=', 0, "and the next attempt in $d->{retryInMs} ms");
($s) = http_request('GET', '/health/ready');
is($s, 503, 'not ready meanwhile');
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-6c');
is($s, 200, 'the plain producer is untouched');
unlink nginx_prefix() . '/fail-new' or die;
($s, $h, $b) = main::wait_status('/health/ready', 200, 20);
is($s, 200, 'ready again once a replacement succeeds') or diag($b);
my $uri = '/api/v1/send?mode=idempotent&eventId=life-6d&partition=0';
($s, $h, $b) = http_request('POST', $uri);
is($s, 200, 'idempotent sends work again') or diag($b);
kafka_check_send($uri, $s, $h, $b, label => 'replaced producer');
$d = main::detail()->{producers}{idempotent};
is($d->{state}, 'UP', 'UP');
is($d->{replaced}, 1, 'replaced once');
is(kafka_count_event('bhf-transactions', 'life-6b'), 0, 'the refused send is not in Kafka');
--- error_log eval
['[alert]',
 'fatal error in the idempotent producer',
 'cannot create the idempotent producer: Failed to create thread',
 qr/idempotent producer \S+ started after \d+ failed attempt\(s\)/]



=== TEST 7: graceful quit with kafka_producer_shutdown_timeout 1s: the waiting client is answered at 1s, "possibly persisted", and the worker exits
--- http_config
    kafka_producer_shutdown_timeout 1s;
    kafka_producer_request_timeout 30s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-7-warm&partition=0
--- error_code: 200
--- timeout: 30
--- test_code
kafka_mock("rtt $_ 4000") for 1 .. 3;
my $s = http_start('POST', '/api/v1/send?mode=plain&eventId=life-7&partition=0');
sleep 0.5;
my $t0 = time;
nginx_signal('quit');
my ($status, $body, $raw) = http_finish($s);
my $took = time - $t0;
is($status, 504, 'a send in flight at the end of the shutdown timeout: 504') or diag($raw);
like($body, qr/"kafkaError":"_PURGE_INFLIGHT","persisted":"possibly"\}$/, 'possibly persisted');
unlike($raw, qr/Retry-After/i, 'no Retry-After for what may be written');
cmp_ok($took, '<', 3.5, sprintf('answered %.2f s after the quit (timeout 1 s)', $took));
ok(defined nginx_wait(5), 'nginx exits');
kafka_mock("rtt $_ 0") for 1 .. 3;
# the mock appends at once and only delays its answer: the record is there,
# as "possibly" said
is(kafka_count_event('bhf-transactions', 'life-7'), 1, 'and the record is in the topic');
--- no_kafka_check
--- error_log
kafka_producer: shutdown, purging 1 message(s) of the plain producer



=== TEST 8: nginx -s stop: the waiting client is answered before the worker goes, nothing blocks
--- http_config
    kafka_producer_request_timeout 30s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-8-warm&partition=0
--- error_code: 200
--- timeout: 30
--- test_code
kafka_mock("rtt $_ 4000") for 1 .. 3;
my $s = http_start('POST', '/api/v1/send?mode=plain&eventId=life-8&partition=0');
sleep 0.5;
my $t0 = time;
nginx_signal('stop');
my ($status, $body, $raw) = http_finish($s);
my $took = time - $t0;
is($status, 504, 'a send in flight at SIGTERM: 504') or diag($raw);
like($body, qr/"persisted":"possibly"\}$/, 'possibly persisted');
cmp_ok($took, '<', 1.5, sprintf('answered %.2f s after SIGTERM', $took));
ok(defined nginx_wait(5), 'nginx exits');
kafka_mock("rtt $_ 0") for 1 .. 3;
is(kafka_count_event('bhf-transactions', 'life-8'), 1, 'the record is in the topic');
--- no_kafka_check
--- no_error_log
[alert]



=== TEST 9: worker_shutdown_timeout shorter than the shutdown timeout: clients are answered when it expires
--- main_config
worker_shutdown_timeout 1s;
--- http_config
    kafka_producer_request_timeout 30s;
    kafka_producer_shutdown_timeout 30s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-9-warm&partition=0
--- error_code: 200
--- timeout: 30
--- test_code
kafka_mock("rtt $_ 4000") for 1 .. 3;
my $s = http_start('POST', '/api/v1/send?mode=plain&eventId=life-9&partition=0');
sleep 0.5;
my $t0 = time;
nginx_signal('quit');
my ($status, $body, $raw) = http_finish($s);
my $took = time - $t0;
is($status, 504, 'answered 504 when worker_shutdown_timeout expires') or diag($raw);
like($body, qr/"persisted":"possibly"\}$/, 'possibly persisted');
cmp_ok($took, '<', 3, sprintf('answered %.2f s after the quit', $took));
ok(defined nginx_wait(5), 'nginx exits');
kafka_mock("rtt $_ 0") for 1 .. 3;
is(kafka_count_event('bhf-transactions', 'life-9'), 1, 'the record is in the topic');
--- no_kafka_check



=== TEST 10: a reload that changes the status zone's size is refused, the running zone keeps its records
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-10&sendMode=async
--- error_code: 202
--- test_code
my ($s, $h, $b) = http_request('GET', '/api/v1/status?requestId=00000000-0000-4000-8000-000000000000');
is($s, 404, 'unknown requestId');
main::edit_conf(sub { $_[0] =~ s/kafka_status:1m/kafka_status:2m/r });
nginx_signal('reload');
sleep 1.5;
main::edit_conf(sub { $_[0] =~ s/kafka_status:2m/kafka_status:1m/r });
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-10b');
is($s, 200, 'the running configuration still serves');
--- error_log
[emerg]
kafka_producer_status_zone "kafka_status" cannot change its size from 1048576 to 2097152 on reload



=== TEST 11: a record's deadline is the one of the worker that accepted it: a reload to a shorter delivery timeout does not expire it
--- http_config
    kafka_producer_delivery_timeout 40s;
    kafka_producer_request_timeout 60s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-11-warm&partition=0
--- error_code: 200
--- timeout: 90
--- test_code
kafka_mock("rtt $_ 33000") for 1 .. 3;
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-11&partition=0&sendMode=async');
is($s, 202, 'accepted with a 40 s delivery timeout');
my $loc = $h->{location};
main::edit_conf(sub { $_[0] =~ s/kafka_producer_delivery_timeout 40s;/kafka_producer_delivery_timeout 1s;/r });
nginx_signal('reload');
sleep 32;
# the new workers' expiry runs on their own sends (deadline 1 s + 30 s)
http_request('POST', '/api/v1/send?mode=plain&eventId=life-11-x&partition=1&sendMode=async');
($s, $h, $b) = http_request('GET', $loc);
unlike($b, qr/"state":"ERROR"/, 'still not ERROR 32 s later, after the new workers expired what they could') or diag($b);
kafka_mock("rtt $_ 0") for 1 .. 3;
my $st = status_wait($loc, 30);
like($st, qr/"state":"OK"/, 'and OK once delivered by the old worker') or diag($st);
is(kafka_count_event('bhf-transactions', 'life-11'), 1, 'the record is in the topic once');
--- no_kafka_check



=== TEST 12: eviction stops when it cannot help: a record of another size class while a PENDING record pins every page gets 503 and evicts nothing
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_small:32k;
    kafka_producer_request_timeout 60s;
    kafka_producer_delivery_timeout 60s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-12-warm&partition=1
--- error_code: 200
--- timeout: 90
--- test_code
kafka_mock('leader bhf-transactions 0 1');
kafka_mock('leader bhf-transactions 1 2');
# the producer learns the new leaders (a send to a former leader is
# answered NOT_LEADER_FOR_PARTITION, the metadata is refreshed) before
# broker 1 is slowed: else a partition 1 it still thinks broker 1 leads
# would wait for broker 1 too
for my $part (0, 1) {
    my ($s) = http_request('POST', "/api/v1/send?mode=plain&eventId=life-12-leader$part&partition=$part");
    die "leader warm-up $part: $s" unless $s == 200;
}
kafka_mock('rtt 1 30000');
# pairs of a PENDING record (partition 0, slow) and a finished one
# (partition 1), same slab size class, until the zone is full: the
# oldest finished record is then evicted by the next pair
my (@done, $full);
# the mock's 30 s rtt is taken away whatever happens here: the next
# blocks share this mock cluster
eval {
    for my $i (1 .. 400) {
        my ($s, $h) = http_request('POST', "/api/v1/send?mode=plain&eventId=p$i&partition=0&sendMode=async");
        die "pending send $i: $s" unless $s == 202;
        ($s, $h) = http_request('POST', "/api/v1/send?mode=plain&eventId=d$i&partition=1&sendMode=async");
        die "finished send $i: $s" unless $s == 202;
        my $st = status_wait($h->{location}, 30);
        die "d$i: $st" unless $st =~ /"state":"OK"/;
        push @done, $h->{location};
        my ($s0) = http_request('GET', $done[0]);
        if ($s0 == 404) {
            $full = $i;
            last;
        }
    }
};
if (my $err = $@) {
    kafka_mock('rtt 1 0');
    die $err;
}
ok($full, "the zone is full after $full pairs");
my @found = grep { (http_request('GET', $_))[0] == 200 } @done;
cmp_ok(scalar @found, '>', 0, scalar(@found) . ' finished records in the zone');
my $big = 'x' x 512;
my ($s, $h, $b) = http_request('POST', "/api/v1/send?mode=plain&eventId=$big&partition=1&sendMode=async");
is($s, 503, 'a record of another size class: 503') or diag($b);
like($b, qr/the async status zone is full of pending records/, 'the zone is full');
my @after = grep { (http_request('GET', $_))[0] == 200 } @found;
is(scalar @after, scalar @found, 'no finished record was evicted for nothing');
kafka_mock('rtt 1 0');
is(kafka_count_event('bhf-transactions', "d$full"), 1, "d$full is in the topic once");
--- no_kafka_check
--- error_log
kafka_producer_status_zone "kafka_small" is full of pending records



=== TEST 13: a reload with kafka_producer_shutdown_timeout 1s: the old worker's async record in flight becomes ERROR "possibly", and the record is in the topic
--- http_config
    kafka_producer_shutdown_timeout 1s;
    kafka_producer_request_timeout 30s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-13-warm&partition=0
--- error_code: 200
--- timeout: 30
--- test_code
kafka_mock("rtt $_ 4000") for 1 .. 3;
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-13&partition=0&sendMode=async');
is($s, 202, 'accepted');
sleep 0.5;
nginx_signal('reload');
my $st = status_wait($h->{location}, 10);
like($st, qr/"state":"ERROR",.*"error":"_PURGE_INFLIGHT: Local: Purged in flight","persisted":"possibly"\}$/,
     'ERROR, possibly persisted, once the old worker purged it') or diag($st);
kafka_mock("rtt $_ 0") for 1 .. 3;
is(kafka_count_event('bhf-transactions', 'life-13'), 1, 'and the record is in the topic');
--- no_kafka_check
--- error_log
kafka_producer: shutdown, purging 1 message(s) of the plain producer



=== TEST 14: brokers that go down while connected: no client waits, and no record stays PENDING, much past the delivery timeout
--- http_config
    kafka_producer_delivery_timeout 3s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-14-warm
--- error_code: 200
--- timeout: 40
--- test_code
http_request('POST', '/api/v1/send?mode=idempotent&eventId=life-14-warm2');
kafka_mock('down all');
my $t0 = time;
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=life-14a&sendMode=async');
is($s, 202, 'async accepted');
my $loc = $h->{location};
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-14b', undef, timeout => 30);
my $took = time - $t0;
ok($s == 503 || $s == 504, "sync answered $s") or diag($b);
cmp_ok($took, '<', 3 + 2 + 1.5, sprintf('within the delivery timeout + 2 s margin (%.2f s)', $took));
if ($s == 504) {
    like($b, qr/"persisted":"possibly"/, 'a 504 says possibly written');
} else {
    like($b, qr/"persisted":"no"/, 'a 503 says not written');
}
my $st = status_wait($loc, 3 + 2 + 1.5 - (time - $t0));
like($st, qr/"state":"ERROR"/, sprintf('the async record is ERROR %.2f s after the send', time - $t0)) or diag($st);
kafka_mock('up all');
my $d = main::detail()->{producers};
note("expired: plain $d->{plain}{expired}, idempotent $d->{idempotent}{expired}; late reports: "
     . "$d->{plain}{lateReports}, $d->{idempotent}{lateReports}");
($s, $h, $b) = main::wait_status('/health/ready', 200, 20);
my $uri = '/api/v1/send?mode=plain&eventId=life-14c';
for (1 .. 20) {
    ($s, $h, $b) = http_request('POST', $uri);
    last if $s == 200;
    sleep 0.5;
}
is($s, 200, 'service resumes without a reload') or diag($b);
is(kafka_count_event('bhf-transactions', 'life-14c'), 1, 'and the record is there once');
--- no_kafka_check



=== TEST 15: every fresh idempotent producer fails at once (InitProducerId refused, as a missing IdempotentWrite ACL does): replacements back off, 503 + Retry-After meanwhile, recovery when the broker accepts
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=life-15-warm&partition=0
--- error_code: 200
--- timeout: 60
--- test_code
# the next 3 InitProducerId are refused; a fatal error (out-of-order
# sequence) makes the running idempotent producer be replaced
kafka_mock('error InitProducerId CLUSTER_AUTHORIZATION_FAILED 3');
kafka_mock('leader bhf-transactions 0 1');
kafka_mock('broker-error 1 Produce OUT_OF_ORDER_SEQUENCE_NUMBER 0 1');
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=life-15a&partition=0');
is($s, 502, 'the send that hit the fatal error: 502') or diag($b);
sleep 2.5;
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=life-15b');
is($s, 503, 'idempotent sends: 503 while fresh producers keep failing') or diag($b);
like($h->{'retry-after'} // '', qr/^\d+$/, "Retry-After: " . ($h->{'retry-after'} // 'none'));
my $d = main::detail()->{producers}{idempotent};
is($d->{state}, 'REPLACING', "detail: REPLACING, replaced $d->{replaced}, next attempt in " . ($d->{retryInMs} // '?') . ' ms');
($s) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-15c');
is($s, 200, 'the plain producer is untouched');
($s, $h, $b) = main::wait_status('/health/ready', 200, 30);
is($s, 200, 'ready once the broker gives a producer id again') or diag($b);
$d = main::detail()->{producers}{idempotent};
cmp_ok($d->{replaced}, '<=', 5, "$d->{replaced} replacements in all (backoff 0.5, 1, 2, 4 s), not hundreds");
open my $f, '<', nginx_prefix() . '/logs/error.log' or die;
my @lines = <$f>;
close $f;
my @alerts = grep { /\[alert\].*fatal error in the idempotent producer/ } @lines;
my @warns = grep { /\[warn\].*fatal error in the idempotent producer/ } @lines;
is(scalar @alerts, 2, '[alert] for the out-of-order sequence and for the first refused producer id');
cmp_ok(scalar @warns, '>=', 1, 'the repetitions at [warn]: ' . scalar @warns);
my $uri = '/api/v1/send?mode=idempotent&eventId=life-15d';
($s, $h, $b) = http_request('POST', $uri);
is($s, 200, 'idempotent sends work again') or diag($b);
kafka_check_send($uri, $s, $h, $b, label => 'after the backoff');
--- no_kafka_check
--- error_log
[alert]
fatal error in the idempotent producer
failed before any delivery, replacing it in



=== TEST 16: a fatal error purges the messages in flight: they are "possibly" written (504, no Retry-After), never a 503 for a record that is in the topic
--- config eval: $::Config
--- request
POST /api/v1/send?mode=idempotent&eventId=life-16-warm0&partition=0
--- error_code: 200
--- timeout: 60
--- test_code
for my $p (1, 2) {
    my ($s) = http_request('POST', "/api/v1/send?mode=idempotent&eventId=life-16-warm$p&partition=$p");
    is($s, 200, "partition $p warm");
}
kafka_mock("rtt $_ 800") for 1 .. 3;
kafka_mock('error Produce OUT_OF_ORDER_SEQUENCE_NUMBER 1');
my @socks = map { http_start("POST", "/api/v1/send?mode=idempotent&eventId=life-16-$_&partition=$_") } 0 .. 2;
my %answer;
for my $p (0 .. 2) {
    my ($status, $body, $raw) = http_finish($socks[$p]);
    $answer{$p} = [$status, $body, $raw];
    note("partition $p: $status $body");
}
kafka_mock("rtt $_ 0") for 1 .. 3;
my $n502 = grep { $_->[0] == 502 } values %answer;
is($n502, 1, 'the send that got the error: 502');
for my $p (0 .. 2) {
    my ($status, $body, $raw) = @{ $answer{$p} };
    my $count = kafka_count_event('bhf-transactions', "life-16-$p");
    if ($status == 503) {
        is($count, 0, "partition $p: a 503 only for a record that is not in the topic");
        like($body, qr/"persisted":"no"/, "partition $p: 503 says not written");
    } elsif ($status == 504) {
        like($body, qr/"persisted":"possibly"/, "partition $p: 504 says possibly written ($count in the topic)");
        unlike($raw, qr/Retry-After/i, "partition $p: no Retry-After");
    } elsif ($status == 200) {
        is($count, 1, "partition $p: 200 and in the topic once");
    } else {
        is($status, 502, "partition $p: 502");
    }
}
--- no_kafka_check
--- error_log
[alert]
fatal error in the idempotent producer



=== TEST 17: a requestId names its record's slot: a forged id at the slot of a real record, inside it or past the zone answers 404, and the status variable is empty
--- config eval
$::Config . <<'_EOC_';
    location = /state {
        set_kafka_producer_state $st $arg_requestId;
        return 200 "[$st]";
    }
_EOC_
--- request
POST /api/v1/send?mode=plain&eventId=life-17-warm&partition=2
--- error_code: 200
--- test_code
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=life-17&partition=2&sendMode=async');
is($s, 202, 'accepted');
my ($id) = $h->{location} =~ /requestId=(\S+)$/;
like($id, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a version 4 UUID');
my $st = status_wait("/api/v1/status?requestId=$id", 10);
like($st, qr/"state":"OK".*"eventId":"life-17"/s, 'the real id: OK') or diag($st);
($s, undef, $b) = http_request('GET', "/state?requestId=$id");
is($b, '[OK]', 'the real id: the status variable');
my $slot = hex(substr($id, 0, 8));
# the same slot, one random bit flipped in each byte after the slot
for my $pos (9, 11, 14, 16, 20, 24, 35) {
    my $f = $id;
    substr($f, $pos, 1) = sprintf('%x', hex(substr($f, $pos, 1)) ^ 1);
    ($s, undef, $b) = http_request('GET', "/api/v1/status?requestId=$f");
    is($s, 404, "the record's slot, another id ($f): 404") or diag($b);
    unlike($b, qr/life-17/, 'nothing of the record');
    (undef, undef, $b) = http_request('GET', "/state?requestId=$f");
    is($b, '[]', 'and no state');
}
for my $other (map { $slot + $_ } 1, 2, -1) {
    my $f = sprintf('%08x', $other & 0xffffffff) . substr($id, 8);
    ($s, undef, $b) = http_request('GET', "/api/v1/status?requestId=$f");
    is($s, 404, "a neighbouring slot with the record's random bytes: 404") or diag($b);
}
for my $f ('ffffffff' . substr($id, 8), '00100000' . substr($id, 8)) {
    ($s, undef, $b) = http_request('GET', "/api/v1/status?requestId=$f");
    is($s, 404, "a slot past the zone ($f): 404") or diag($b);
}
is(kafka_count_event('bhf-transactions', 'life-17'), 1, 'the record is in the topic once');



=== TEST 18: an evicted record's slot reused by a new record: the old requestId answers 404, never the new record
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_small:32k;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-18-warm&partition=1
--- error_code: 200
--- timeout: 90
--- test_code
my (@ids, %event, $evicted);
for my $i (1 .. 600) {
    my ($s, $h) = http_request('POST', "/api/v1/send?mode=plain&eventId=r$i&partition=1&sendMode=async");
    die "send $i: $s" unless $s == 202;
    my ($id) = $h->{location} =~ /requestId=(\S+)$/;
    my $st = status_wait($h->{location}, 10);
    die "r$i: $st" unless $st =~ /"state":"OK"/;
    push @ids, $id;
    $event{$id} = "r$i";
    my ($s0) = http_request('GET', "/api/v1/status?requestId=$ids[0]");
    if ($s0 == 404) {
        $evicted = $i;
        last;
    }
}
ok($evicted, "the first record was evicted after $evicted sends");
my $old = $ids[0];
my @reused = grep { $_ ne $old && substr($_, 0, 8) eq substr($old, 0, 8) } @ids;
ok(@reused, "its slot " . substr($old, 0, 8) . " holds a newer record (@reused)");
my ($s, undef, $b) = http_request('GET', "/api/v1/status?requestId=$old");
is($s, 404, 'the evicted requestId: 404');
unlike($b, qr/"eventId"/, 'no record in the answer') or diag($b);
for my $id (@reused) {
    ($s, undef, $b) = http_request('GET', "/api/v1/status?requestId=$id");
    is($s, 200, "the new record at that slot: 200");
    like($b, qr/"eventId":"$event{$id}"/, "with its own eventId $event{$id}");
}
is(kafka_count_event('bhf-transactions', 'r1'), 1, 'the evicted record is still in the topic once');
--- no_kafka_check



=== TEST 19: a zone full of finished records of one size class makes room for a record of another: the oldest record's whole page is evicted, not one chunk at a time
--- workers: 1
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone kafka_small:32k;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=life-19-warm&partition=1
--- error_code: 200
--- timeout: 90
--- test_code
# small records (one size class) until the oldest is evicted: every page
# of the zone is then taken by that class, and all records are finished
my (@loc, $full);
for my $i (1 .. 600) {
    my ($s, $h) = http_request('POST', "/api/v1/send?mode=plain&eventId=s$i&partition=1&sendMode=async");
    die "send $i: $s" unless $s == 202;
    my $st = status_wait($h->{location}, 10);
    die "s$i: $st" unless $st =~ /"state":"OK"/;
    push @loc, $h->{location};
    if ((http_request('GET', $loc[0]))[0] == 404) {
        $full = $i;
        last;
    }
}
ok($full, "the zone is full after $full small records");
my @before = grep { (http_request('GET', $_))[0] == 200 } @loc;
# a record 4 size classes up: it needs a free page
my $big = 'b' x 500;
my ($s, $h, $b) = http_request('POST', "/api/v1/send?mode=plain&eventId=$big&partition=1&sendMode=async");
is($s, 202, 'a record of another size class: 202') or diag($b);
my $st = status_wait($h->{location}, 10);
like($st, qr/"state":"OK"/, 'and it is delivered') or diag($st);
my @after = grep { (http_request('GET', $_))[0] == 200 } @before;
my $gone = @before - @after;
cmp_ok($gone, '>', 0, "$gone finished records were evicted");
# one page of 4 KiB holds at most 32 records of the smallest class
cmp_ok($gone, '<=', 32, 'no more than one page of them');
is(kafka_count_event('bhf-transactions', $big), 1, 'the big record is in the topic once');
is(kafka_count_event('bhf-transactions', "s$full"), 1, "s$full is in the topic once");
--- no_kafka_check
--- no_error_log
is full of pending records
