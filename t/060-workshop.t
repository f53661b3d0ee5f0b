# The fault channel of `make run`, as a workshop student drives it:
# kafka-mock's "all" wherever a broker is named, its control socket, and
# tools/fault, which prints the mock's answer, exits non-zero on a refusal
# and never blocks when no mock listens.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer;
use File::Temp qw(tempdir);
use IO::Socket::UNIX;
use IPC::Run ();
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time sleep);

BEGIN {
    if ($ENV{TEST_NGINX_KAFKA_READ_BROKERS}) {
        Test::More::plan(skip_all => "tools/fault drives make run's mock "
                                     . "cluster, not a real one");
    }
}
plan('no_plan');

our $Dir = tempdir('kp-fault-XXXXXX', TMPDIR => 1, CLEANUP => 1);
our $Sock = "$::Dir/kafka-mock.sock";

kafka_mock_args('-b', '3', '-t', 'bhf-transactions:3', '-q', '-s', $Sock);

our $Config = <<'_EOC_';
    location = /api/v1/send {
        kafka_producer_send;
    }

    location = /health {
        kafka_producer_health;
    }
_EOC_

# fault(ARGS...): runs tools/fault; returns (exit status, output, seconds)
sub fault {
    my @cmd = ('tools/fault', @_);
    my $out = '';
    my $t0 = time;
    IPC::Run::run(\@cmd, '<', \undef, '>&', \$out,
                  IPC::Run::timeout(20, name => "@cmd"));
    return ($? >> 8, $out, time - $t0);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: rtt all: every broker answers late; each send waits for it and is read back once
--- http_config
    kafka_producer_delivery_timeout 30s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=ws-1-warm
--- error_code: 200
--- timeout: 60
--- test_code
# one partition led by each broker, so that "all" is seen on each
kafka_mock("leader bhf-transactions $_ " . ($_ + 1)) for 0 .. 2;
for my $p (0 .. 2) {
    http_request('POST', "/api/v1/send?mode=idempotent&eventId=ws-1-warm-$p&partition=$p");
}
kafka_mock('rtt all 700');
my @done;
for my $p (0 .. 2) {
    my $uri = "/api/v1/send?mode=idempotent&eventId=ws-1-p$p&partition=$p";
    my $t0 = time;
    my ($s, $h, $b) = http_request('POST', $uri, undef, timeout => 30);
    my $took = time - $t0;
    is($s, 200, "partition $p (broker " . ($p + 1) . "): 200") or diag($b);
    cmp_ok($took, '>=', 0.65,
           sprintf("partition $p: the answer waited for the broker (%.2f s)", $took));
    push @done, [$uri, $s, $h, $b];
}
kafka_mock('rtt all 0');
kafka_check_send(@$_, label => "rtt all: $_->[0]") for @done;



=== TEST 2: tools/fault: answers over the socket, a refusal exits 1, down all / up all reach the brokers
--- http_config
    kafka_producer_delivery_timeout 2s;
--- config eval: $::Config
--- request
POST /api/v1/send?mode=plain&eventId=ws-2-warm
--- error_code: 200
--- timeout: 60
--- test_code
my ($rc, $out) = main::fault('-s', $::Sock, 'rtt', 'all', '0');
is($rc, 0, 'rtt all 0: exit 0');
is($out, "ok\n", 'rtt all 0: the answer is printed');

($rc, $out) = main::fault('-s', $::Sock, 'rtt 9 5000');
is($rc, 1, 'rtt 9 5000: refused, exit 1');
like($out, qr/^error: bad broker "9", expected 1\.\.3 or all$/m, 'the refusal says why');

($rc, $out) = main::fault('-s', $::Sock, 'broker-error', 'all', 'Produce', 'NO_ERROR', '0', '1');
is($rc, 0, 'broker-error all ...: accepted') or diag($out);

($rc, $out) = main::fault('-s', $::Sock, 'down', 'all');
is($rc, 0, 'down all: exit 0') or diag($out);
my ($s, $h, $b) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=ws-2-down',
                               undef, timeout => 20);
like($s, qr/^50[34]$/, "every broker down: $s") or diag($b);

($rc, $out) = main::fault('-s', $::Sock, 'reset');
is($rc, 0, 'reset: exit 0');
like($out, qr/^rtt all 0: ok\ndown all: ok\nup all: ok\n$/, 'reset: rtt all 0, down all, up all');

my $uri = '/api/v1/send?mode=idempotent&eventId=ws-2-up';
for (1 .. 20) {
    ($s, $h, $b) = http_request('POST', $uri);
    last if $s == 200;
    sleep 0.5;
}
is($s, 200, 'after reset the send succeeds') or diag($b);
kafka_check_send($uri, $s, $h, $b, label => 'after up all', count => '-');
cmp_ok(kafka_count_event('bhf-transactions', 'ws-2-up'), '>=', 1, 'and is read back');



=== TEST 3: tools/fault never blocks: no socket, a stale socket, a mock that does not answer
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- no_kafka_check
--- test_code
my ($rc, $out, $took) = main::fault('-s', "$::Dir/none.sock", 'rtt all 0');
is($rc, 1, 'no socket: exit 1');
like($out, qr/no kafka-mock at .*none\.sock: start `make run` first/, 'no socket: says to start make run');
cmp_ok($took, '<', 5, sprintf('no socket: at once (%.2f s)', $took));

# a socket file nobody listens on, as a killed run leaves it
my $stale = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => "$::Dir/stale.sock", Listen => 1)
    or die "stale.sock: $!";
close $stale;
($rc, $out, $took) = main::fault('-s', "$::Dir/stale.sock", 'rtt all 0');
is($rc, 1, 'stale socket: exit 1');
like($out, qr/nothing listens at .*stale\.sock/, 'stale socket: says nothing listens');
cmp_ok($took, '<', 5, sprintf('stale socket: at once (%.2f s)', $took));

# a listener that never answers: tools/fault gives up after -t seconds
my $mute = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => "$::Dir/mute.sock", Listen => 5)
    or die "mute.sock: $!";
($rc, $out, $took) = main::fault('-s', "$::Dir/mute.sock", '-t', '1', 'rtt all 0');
is($rc, 1, 'no answer: exit 1');
like($out, qr/no answer from the mock within 1 s/, 'no answer: says so');
cmp_ok($took, '<', 5, sprintf('no answer: gave up after -t 1 (%.2f s)', $took));
close $mute;

($rc, $out) = main::fault();
is($rc, 2, 'no command: usage, exit 2');
