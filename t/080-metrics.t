# kafka_producer_metrics: the Prometheus text format, checked by promtool,
# and values that match what the test sent, totals of every worker.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use IPC::Run ();

our $Config = <<'_EOC_';
    location = /api/v1/send {
        kafka_producer_send;
    }

    location = /api/v1/status {
        kafka_producer_status;
    }

    location = /events {
        kafka_producer_pass  $arg_topic;
        kafka_producer_mode  plain;
    }

    location /rest/ {
        kafka_producer_rest;
        kafka_producer_mode  plain;
    }

    location = /metrics {
        kafka_producer_metrics;
    }
_EOC_

# GET /metrics: the text and a hash "name{labels}" => value
sub scrape {
    my ($s, $h, $b) = http_request('GET', '/metrics');
    die "metrics: $s" unless $s == 200;
    my %m;
    for (split /\n/, $b) {
        next if /^#/;
        /^(\S+) (\S+)$/ or die "bad line: $_";
        $m{$1} = $2;
    }
    return ($b, \%m, $h);
}

# promtool check metrics on the text (when promtool is installed)
sub promtool_ok {
    my ($text) = @_;
    SKIP: {
        skip 'no promtool (Debian package prometheus)', 1
            unless `which promtool 2>/dev/null`;
        my $out = '';
        IPC::Run::run(['promtool', 'check', 'metrics'], '<', \$text,
                      '>&', \$out);
        is($?, 0, 'promtool check metrics: valid') or diag($out);
    }
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: requests, records, delivery histogram and gauges match what was sent; promtool accepts the text
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- timeout: 30
--- test_code
my @send = (
    ['POST', '/api/v1/send?mode=plain&eventId=m1-a', 200],
    ['POST', '/api/v1/send?mode=plain&eventId=m1-b', 200],
    ['POST', '/api/v1/send?mode=idempotent&eventId=m1-c', 200],
    ['POST', '/api/v1/send?mode=idempotent&eventId=m1-d&sendMode=async', 202],
    ['POST', '/api/v1/send?mode=plain', 400],
    ['GET', '/api/v1/send?mode=plain&eventId=m1-e', 405],
);
for my $r (@send) {
    my ($s) = http_request($r->[0], $r->[1]);
    is($s, $r->[2], "$r->[0] $r->[1]: $r->[2]");
}
my ($s, $h, $b) = http_request('POST', '/events?topic=metrics-a', 'x');
is($s, 200, 'pass: 200');
($s) = http_request('POST', '/rest/topics/metrics-a',
                    '{"records":[{"value":"r1"},{"value":"r2"}]}',
                    headers => "Content-Type: application/vnd.kafka.text.v2+json\r\n");
is($s, 200, 'REST, two records: 200');
($s) = http_request('POST', '/rest/topics/metrics-a', 'x',
                    headers => "Content-Type: text/plain\r\n");
is($s, 415, 'REST, another content type: 415');
status_wait('/api/v1/status?requestId=00000000-0000-4000-8000-000000000000', 0.1);
select undef, undef, undef, 1.5;
my ($text, $m, $mh) = main::scrape();
is($mh->{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8', 'exposition format 0.0.4');
main::promtool_ok($text);
my $rq = 'nginx_kafka_producer_requests_total';
is($m->{qq[$rq\{handler="send",mode="plain",send_mode="sync",code="200"}]}, 2, 'two plain sync 200');
is($m->{qq[$rq\{handler="send",mode="idempotent",send_mode="sync",code="200"}]}, 1, 'one idempotent sync 200');
is($m->{qq[$rq\{handler="send",mode="idempotent",send_mode="async",code="202"}]}, 1, 'one async 202');
is($m->{qq[$rq\{handler="send",mode="plain",send_mode="unknown",code="400"}]}, 1, 'the 400: mode known, send mode not');
is($m->{qq[$rq\{handler="send",mode="unknown",send_mode="unknown",code="405"}]}, 1, 'the 405');
is($m->{qq[$rq\{handler="pass",mode="plain",send_mode="sync",code="200"}]}, 1, 'the pass 200');
my $rc = 'nginx_kafka_producer_records_total';
is($m->{qq[$rc\{topic="bhf-transactions",mode="plain",result="delivered"}]}, 2, 'records: 2 plain');
is($m->{qq[$rc\{topic="bhf-transactions",mode="idempotent",result="delivered"}]}, 2, 'records: 2 idempotent (sync and async)');
is($m->{qq[$rc\{topic="metrics-a",mode="plain",result="delivered"}]}, 3, 'records: the pass and the two of the REST batch');
my %rest;
for my $k (grep { /^\Q$rq\E\{handler="rest",mode="plain",/ } keys %$m) {
    my ($code) = $k =~ /code="(\d+)"/;
    $rest{$code} += $m->{$k};
}
is($rest{200}, 1, 'the REST batch: one request, 200');
is($rest{415}, 1, 'the REST 415: one request');
is($m->{qq[$rq\{handler="rest",mode="plain",send_mode="sync",code="200"}]}, 1, 'the REST batch is a sync request');
is($m->{'nginx_kafka_producer_delivery_seconds_count{mode="plain"}'}, 5, 'histogram count, plain');
is($m->{'nginx_kafka_producer_delivery_seconds_count{mode="idempotent"}'}, 2, 'histogram count, idempotent');
is($m->{'nginx_kafka_producer_delivery_seconds_bucket{mode="plain",le="+Inf"}'}, 5, '+Inf bucket = count');
cmp_ok($m->{'nginx_kafka_producer_delivery_seconds_sum{mode="plain"}'}, '>', 0, 'a sum of seconds');
is($m->{'nginx_kafka_producer_up{worker="0",mode="idempotent"}'}, 1, 'the idempotent producer is up');
cmp_ok($m->{'nginx_kafka_producer_brokers_up{worker="0",mode="plain"}'}, '>=', 1, 'brokers up');
is($m->{'nginx_kafka_producer_messages_in_flight{worker="0",mode="plain"}'}, 0, 'nothing in flight');
is($m->{'nginx_kafka_producer_retries_total{worker="0",mode="plain"}'}, 0, 'no retries without faults');
is($m->{'nginx_kafka_producer_status_records{state="finished"}'}, 1, 'one finished async record');
is($m->{'nginx_kafka_producer_status_records{state="pending"}'}, 0, 'none pending');
cmp_ok($m->{'nginx_kafka_producer_status_zone_bytes{state="used"}'}, '>', 0, 'zone bytes used');
is($m->{'nginx_kafka_producer_status_zone_bytes{state="size"}'}, 1048576, 'zone size');
is(kafka_count_event('bhf-transactions', 'm1-a'), 1, 'read back');
--- no_kafka_check



=== TEST 2: the topic series are bounded: the first kafka_producer_metrics_topics topics, the rest as _other
--- http_config
    kafka_producer_metrics_topics 2;
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- test_code
for my $t (qw(bound-a bound-b bound-c bound-d bound-a)) {
    my ($s) = http_request('POST', "/events?topic=$t", 'v');
    is($s, 200, "pass to $t");
}
my ($text, $m) = main::scrape();
main::promtool_ok($text);
my $rc = 'nginx_kafka_producer_records_total';
is($m->{qq[$rc\{topic="bound-a",mode="plain",result="delivered"}]}, 2, 'bound-a has its series');
is($m->{qq[$rc\{topic="bound-b",mode="plain",result="delivered"}]}, 1, 'bound-b too');
is($m->{qq[$rc\{topic="_other",mode="plain",result="delivered"}]}, 2, 'c and d under _other');
ok(!grep({ /bound-c|bound-d/ } keys %$m), 'no series for c and d');
is(kafka_count('bound-c'), 1, 'bound-c read back');
--- no_kafka_check



=== TEST 3: totals of every worker, whichever worker answers the scrape
--- workers: 2
--- config eval: $::Config
--- request
GET /nothing
--- error_code: 404
--- timeout: 30
--- test_code
for my $i (1 .. 40) {
    my ($s) = http_request('POST', "/api/v1/send?mode=plain&eventId=m3-$i");
    die "send $i: $s" unless $s == 200;
}
select undef, undef, undef, 1.5;
my %seen;
for (1 .. 10) {
    my ($text, $m) = main::scrape();
    my $v = $m->{'nginx_kafka_producer_requests_total{handler="send",mode="plain",send_mode="sync",code="200"}'};
    $seen{$v}++;
}
is_deeply([keys %seen], [40], 'every scrape says 40, whatever worker answers');
my ($text, $m) = main::scrape();
my @workers = grep { /^nginx_kafka_producer_up\{worker="\d+",mode="plain"\}$/ } keys %$m;
is(scalar @workers, 2, 'gauges of both workers');
is(kafka_count('bhf-transactions') >= 40, 1, 'the records are in the topic');
--- no_kafka_check
