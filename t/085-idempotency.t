# HTTP idempotency keys (draft-ietf-httpapi-idempotency-key-header): the
# first request with a key is produced and its answer kept, a repeat is
# answered the same with nothing produced, a repeat in flight gets 409,
# another request with the same key 422; every worker sees the keys, and
# they survive a reload.  Every count is read back from the broker.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use Time::HiRes qw(time sleep);

our $HttpConfig = <<'_EOC_';
    kafka_producer_idempotency_zone  kafka_idem:1m ttl=1h;
_EOC_

our $Config = <<'_EOC_';
    kafka_producer_idempotency_key  $http_idempotency_key;

    location = /api/v1/send {
        kafka_producer_send;
    }

    location = /api/v1/status {
        kafka_producer_status;
    }

    location = /events {
        kafka_producer_pass  idem-events;
    }
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a repeat is answered the same, nothing produced; the key goes with the record
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- test_code
my $uri = '/api/v1/send?mode=plain&eventId=idem-1';
my ($s1, $h1, $b1) = http_request('POST', $uri, undef, headers => { 'Idempotency-Key' => 'k-1' });
is($s1, 200, 'first: 200');
ok(!defined $h1->{'idempotent-replayed'}, 'not a replay');
my ($s2, $h2, $b2) = http_request('POST', $uri, undef, headers => { 'Idempotency-Key' => 'k-1' });
is($s2, 200, 'repeat: 200');
is($h2->{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
is($b2, $b1, 'the same answer, byte for byte');
is(kafka_count_event('bhf-transactions', 'idem-1'), 1, 'one record');
my ($p, $o) = $b1 =~ /"partition":(\d+),"offset":(\d+)/;
my $r = kafka_record_at('bhf-transactions', $p, $o);
is($r->{headers_map}{'idempotency-key'}, 'k-1', 'the record has the idempotency-key header');
my ($s3) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-1b');
is($s3, 200, 'without a key: produced as usual');
my ($s4, $h4, $b4) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-1-other', undef,
                                  headers => { 'Idempotency-Key' => 'k-1' });
is($s4, 422, 'the same key for another request: 422');
like($b4, qr/"detail":"the idempotency key was used for another request/, 'says why');
is(kafka_count_event('bhf-transactions', 'idem-1-other'), 0, 'not produced');
--- no_kafka_check



=== TEST 2: the generic handler and async: a repeated 202 has the same requestId and Location
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($s1, $h1, $b1) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=idem-2&sendMode=async',
                                  undef, headers => { 'Idempotency-Key' => 'k-2' });
is($s1, 202, 'async: 202');
my ($s2, $h2, $b2) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=idem-2&sendMode=async',
                                  undef, headers => { 'Idempotency-Key' => 'k-2' });
is($s2, 202, 'repeat: 202');
is($h2->{location}, $h1->{location}, 'the same Location');
is($b2, $b1, 'the same requestId');
my $st = status_wait($h1->{location}, 10);
like($st, qr/"state":"OK"/, 'delivered');
is(kafka_count_event('bhf-transactions', 'idem-2'), 1, 'one record');
($s1, $h1, $b1) = http_request('POST', '/events', 'body-2', headers => { 'Idempotency-Key' => 'k-2p' });
($s2, $h2, $b2) = http_request('POST', '/events', 'body-2', headers => { 'Idempotency-Key' => 'k-2p' });
is($s1, 200, 'pass: 200');
is($b2, $b1, 'pass repeat: the same answer');
is($h2->{'idempotent-replayed'}, 'true', 'replayed');
($s2) = http_request('POST', '/events', 'another body', headers => { 'Idempotency-Key' => 'k-2p' });
is($s2, 422, 'pass, another body with the same key: 422');
is(kafka_count('idem-events'), 1, 'one record in idem-events');
--- no_kafka_check



=== TEST 3: a repeat while the first is in flight gets 409 + a Retry-After as long as it has been in flight
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=idem-3-warm&partition=0
--- error_code: 200
--- timeout: 20
--- test_code
kafka_mock("rtt $_ 4000") for 1 .. 3;
my $t0 = time;
my $first = http_start('POST', '/api/v1/send?mode=plain&eventId=idem-3&partition=0', undef, headers => { 'Idempotency-Key' => 'k-3' });
sleep 0.3;
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-3&partition=0',
                               undef, headers => { 'Idempotency-Key' => 'k-3' });
is($s, 409, 'in flight: 409');
like($h->{'retry-after'} // '', qr/^[12]$/, 'Retry-After: as long again as the first was in flight: ' . ($h->{'retry-after'} // 'none'));
like($b, qr/"detail":"the first request with this idempotency key is still in flight"/, 'says why');
sleep 2.6 - (time - $t0);
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-3&partition=0',
                            undef, headers => { 'Idempotency-Key' => 'k-3' });
is($s, 409, 'still in flight after 2.6 s: 409');
like($h->{'retry-after'} // '', qr/^[23]$/, 'Retry-After grows with its time in flight: ' . ($h->{'retry-after'} // 'none'));
my ($s1, $b1) = http_finish($first);
is($s1, 200, 'the first: 200');
kafka_mock("rtt $_ 0") for 1 .. 3;
($s, $h, $b) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-3&partition=0',
                            undef, headers => { 'Idempotency-Key' => 'k-3' });
is($s, 200, 'after it: the replay');
is($b, $b1, 'the same answer');
is(kafka_count_event('bhf-transactions', 'idem-3'), 1, 'one record');
--- no_kafka_check



=== TEST 4: the same key from two workers, concurrently and in sequence: exactly one record
--- workers: 2
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- timeout: 30
--- test_code
for my $round (1 .. 5) {
    my @socks = map { http_start('POST', "/api/v1/send?mode=idempotent&eventId=idem-4-$round", undef, headers => { 'Idempotency-Key' => "k-4-$round" }) } 1 .. 8;
    my %status;
    $status{ (http_finish($_))[0] }++ for @socks;
    for (1 .. 4) {
        my ($s) = http_request('POST', "/api/v1/send?mode=idempotent&eventId=idem-4-$round",
                               undef, headers => { 'Idempotency-Key' => "k-4-$round" });
        $status{$s}++;
    }
    note("round $round: " . join(', ', map { "$_ x$status{$_}" } sort keys %status));
    ok(!grep({ $_ != 200 && $_ != 409 } keys %status), "round $round: only 200 and 409");
    is(kafka_count_event('bhf-transactions', "idem-4-$round"), 1, "round $round: exactly one record");
}
--- no_kafka_check



=== TEST 5: the keys survive a reload
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- test_code
my ($s1, $h1, $b1) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-5', undef,
                                  headers => { 'Idempotency-Key' => 'k-5' });
is($s1, 200, 'first: 200');
nginx_signal('reload');
sleep 1.5;
my ($s2, $h2, $b2) = http_request('POST', '/api/v1/send?mode=plain&eventId=idem-5', undef,
                                  headers => { 'Idempotency-Key' => 'k-5' });
is($s2, 200, 'after the reload: 200');
is($h2->{'idempotent-replayed'}, 'true', 'a replay');
is(kafka_count_event('bhf-transactions', 'idem-5'), 1, 'one record');
--- no_kafka_check
