# Process faults under load (issue 3): reloads, a graceful quit and a broker
# that goes down and up while ~32 connections keep mixed sends in flight.
# Each reload and the quit are signalled while requests are in flight; for
# the quit every broker answers 200 ms late, so ~30 requests are pending.
#
# The load (t/lib/Test/KafkaProducer/Load.pm) sends POST /api/v1/send in all
# four combinations of mode (plain, idempotent) and sendMode (sync, async),
# every eventId unique, to a topic of its own, from 32 non-blocking
# connections: 16 use keep-alive, 16 send "Connection: close".
#
# Accounting, for every request (Load.pm's load_account):
# - 200: the body names the eventId, topic and key, and the record at that
#   partition/offset has the key, eventId, mode, sendMode and headers;
# - 202: a UUID requestId and its Location; once the delivery timeout
#   (5s here) has passed, GET status says OK (the record is at the
#   partition/offset it names) or ERROR (with an error text), never PENDING
#   (after a graceful quit the zone is gone with the master, so there the
#   record itself is the witness);
# - 503: a problem+json with Retry-After;
# - any other status, a partial answer, a timeout or a reset after the
#   request was written is UNACCOUNTED and fails the test, with one
#   exception each:
#   * a request written on a REUSED keep-alive connection that was closed
#     before a single byte of the answer came back is retried on a fresh
#     connection, as HTTP clients do (nginx closes idle keep-alive
#     connections of a worker that exits); every attempt carries try=N and
#     the access log must not hold the retried attempt (it never reached
#     nginx), and the record must then be in the topic exactly once;
#   * when nginx quits, connections still in the listen queue are reset by
#     the kernel and later ones are refused: accepted only where allowed
#     (the quit test), and only when neither the access log nor the topic
#     has anything for that eventId;
# - the topic: a delivered idempotent send is there exactly once, a plain
#   one at least once (duplicates are counted); a failed one is not there,
#   unless it failed with a timeout (possibly persisted: counted); every
#   record of the topic belongs to an answered request. Only in TEST 3
#   (brokers lost under load) may a delivered idempotent send be there more
#   than once, counted: the producer resends after the broker loss with the
#   same sequence number and the mock cluster de-duplicates only
#   transactional producers (GUIDE 3), where Kafka would drop the resend.
# The figures are printed with diag.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer 'no_plan';
use Test::KafkaProducer::Load;
use Time::HiRes qw(time sleep);

our $DeliveryTimeout = 5;

our $Config = <<'_EOC_';
    add_header X-Worker $pid always;

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

our $HttpConfig = <<"_EOC_";
    kafka_producer_brokers \$TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone load:32m;
    kafka_producer_delivery_timeout ${DeliveryTimeout}s;
_EOC_

# the worker processes of a master
sub workers_of {
    my ($master) = @_;
    return () unless $master;
    if (open my $fh, '<', "/proc/$master/task/$master/children") {
        my $l = <$fh> // '';
        return grep { /^\d+$/ } split ' ', $l;
    }
    return grep { $_ } map { /(\d+)/ ? $1 : () } `pgrep -P $master`;
}

# the request generator: all four combinations, every third with a key
sub generator {
    my ($tag, $topic, %o) = @_;
    return sub {
        my ($seq) = @_;
        my $mode = $seq % 2 ? 'plain' : 'idempotent';
        my $send_mode = $o{async_only} ? 'async' : int($seq / 2) % 2 ? 'async' : 'sync';
        my $eid = "$tag-$seq";
        my $key = $seq % 3 ? $eid : "key-$tag-$seq";
        my $uri = "/api/v1/send?mode=$mode&eventId=$eid&topic=$topic&sendMode=$send_mode";
        $uri .= "&key=$key" if $key ne $eid;
        return { uri => $uri, event_id => $eid, mode => $mode, send_mode => $send_mode,
                 key => $key };
    };
}

# GET status of every 202 once the delivery timeout has passed since the last
sub final_statuses {
    my ($run) = @_;
    my @acc = grep { ($_->{status} // 0) == 202 } @{ $run->{requests} };
    my @loc = grep { length } map { $_->{headers}{location} // '' } @acc;
    my $last = 0;
    for (@acc) { $last = $_->{t_end} if $_->{t_end} > $last }
    my $wait = $last + $DeliveryTimeout + 2 - time;
    note(sprintf 'waiting %.1fs: delivery timeout since the last 202', $wait) if $wait > 0;
    sleep $wait if $wait > 0;
    return load_status(nginx_port(), \@loc);
}

# after a failure: how long do the PENDING records stay PENDING, and what
# do they become (diagnostics only)
sub pending_followup {
    my ($run, $st, $limit) = @_;
    my @loc = grep { ($st->{$_}{body} // '') =~ /"state":"PENDING"/ } keys %$st;
    return unless @loc;
    my %sent = map { (($_->{headers}{location} // '') => $_) } @{ $run->{requests} };
    my @age = sort { $a <=> $b } map { time - $sent{$_}{t_end} } @loc;
    my @seq = sort { $a <=> $b } map { $sent{$_}{seq} } @loc;
    diag(sprintf '%d records PENDING %.1f..%.1fs after their 202 (requests #%d..#%d of %d, '
         . 'sent %.1f..%.1fs into the load)', scalar @loc, $age[0], $age[-1], $seq[0], $seq[-1],
         $run->{issued}, map { $run->{requests}[$_ - 1]{t_start} - $run->{t0} } @seq[0, -1]);
    my $t0 = time;
    while (@loc && time - $t0 < ($limit // 40)) {
        sleep 1;
        my $again = load_status(nginx_port(), \@loc);
        my %c;
        $c{ ($again->{$_}{body} // '') =~ /"state":"(\w+)"/ ? $1 : '?' }++ for @loc;
        diag(sprintf '  %.0fs later: %s', time - $t0, join ' ', map { "$_ $c{$_}" } sort keys %c);
        @loc = grep { ($again->{$_}{body} // '') =~ /"state":"PENDING"/ } @loc;
    }
}

# requests whose [written, answered] interval spans time $t
sub spanning {
    my ($run, $t) = @_;
    return scalar grep { $_->{t_sent} && $_->{t_sent} < $t && $_->{t_end} > $t }
        @{ $run->{requests} };
}

workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: 20 reloads under a load of mixed sends: every request accounted for
--- no_default_http_config
--- http_config eval: $::HttpConfig
--- kafka_mock
topic load-reload 3
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
my $topic = 'load-reload';
my $reloads = 20;
my $master = nginx_pid();
my %gen = map { ($_ => 0) } main::workers_of($master);    # worker pid -> generation
is(scalar keys %gen, 2, 'two workers before the reloads');

my (@reloads, $phase, $t_next, $t_check);
($phase, $t_next, $t_check) = ('spacing', time + 1, 0);
my $tick = sub {
    my ($run) = @_;
    my $now = time;
    if ($phase eq 'spacing') {
        return 0 if $now < $t_next;
        if (@reloads == $reloads) {
            ($phase, $t_next) = ('tail', $now + 1);
            return 0;
        }
        # reload while requests are in flight (2 s at most; checked below)
        return 0 if !$run->{in_flight}->() && $now < $t_next + 2;
        nginx_signal('reload');
        push @reloads, { t => $now, in_flight => $run->{in_flight}->() };
        ($phase, $t_next) = ('new', $now + 10);
        return 0;
    }
    if ($phase eq 'new') {
        return 0 if $now - $t_check < 0.03;
        $t_check = $now;
        my @new = grep { !exists $gen{$_} } main::workers_of($master);
        if (@new >= 2 || $now > $t_next) {
            $gen{$_} = scalar @reloads for @new;
            $reloads[-1]{new} = [@new];
            $reloads[-1]{t_new} = $now;
            # let the new workers serve, then reload again while requests run
            ($phase, $t_next) = ('spacing', $now + 0.25 + rand 0.35);
        }
        return 0;
    }
    return $now >= $t_next;
};
my $run = load_run(port => nginx_port(), concurrency => 32, keepalive => 16,
                   rate => 1500, max_requests => 40000, max_time => 60, answer_timeout => 20,
                   request => main::generator('rl', $topic), tick => $tick);

is(scalar @reloads, $reloads, "$reloads reloads done under load");
my @no_new = grep { @{ $reloads[$_]{new} || [] } != 2 } 0 .. $#reloads;
is(scalar @no_new, 0, 'every reload replaced both workers (new worker pids)')
    or diag(explain [ map { $reloads[$_] } @no_new ]);
my @idle = grep { !$_->{in_flight} } @reloads;
is(scalar @idle, 0, 'requests were in flight at every reload')
    or diag(explain \@idle);
my @spans = map { main::spanning($run, $_->{t}) } @reloads;
my @quiet = grep { !$spans[$_] } 0 .. $#spans;
is(scalar @quiet, 0, 'requests written before each reload were answered after it');
# a response from a worker of generation g after reload g+1 was served by a
# worker that had been told to shut down
my $by_old = grep {
    my $g = $gen{ $_->{pid} // 0 };
    defined $g && $g < @reloads && $_->{t_end} > $reloads[$g]{t}
} @{ $run->{requests} };
cmp_ok($by_old, '>', 0, 'old workers answered requests while shutting down');
my %served = map { ($_->{pid} => 1) } grep { $_->{pid} } @{ $run->{requests} };
diag(sprintf 'reloads %d, in flight at the HUPs: min %d max %d; answers spanning a '
     . 'reload: min %d; answered by shutting-down workers %d; worker pids seen %d of %d; '
     . 'load %.1fs, %.0f req/s',
     scalar @reloads, (sort { $a <=> $b } map { $_->{in_flight} } @reloads)[0, -1],
     (sort { $a <=> $b } @spans)[0], $by_old, scalar keys %served, scalar keys %gen,
     $run->{t_end} - $run->{t0}, $run->{issued} / ($run->{t_end} - $run->{t0}));

# the old workers are gone within a bounded time
my %last = map { ($_ => 1) } @{ $reloads[-1]{new} || [] };
my $end = time + $::DeliveryTimeout + 10;
my @w;
while (time < $end) {
    @w = main::workers_of($master);
    last if @w == 2 && !grep { !$last{$_} } @w;
    sleep 0.1;
}
is(join(' ', sort @w), join(' ', sort keys %last), 'only the last two workers are left')
    or diag("workers: @w");

my $st = main::final_statuses($run);
my @records = kafka_records($topic);
my $acc = load_access_log(nginx_prefix() . '/logs/access.log');
my $f = load_account(run => $run, topic => $topic, records => \@records, statuses => $st,
                     access => $acc, label => 'reload');
main::pending_followup($run, $st) if $f->{PENDING};
cmp_ok($f->{200}, '>', 0, 'sync sends answered');
cmp_ok($f->{OK}, '>', 0, 'async sends delivered');
is($f->{refused} + $f->{not_accepted}, 0, 'the listening socket stayed open across reloads');
--- no_error_log
exited on signal
shutdown, purging
no delivery report for
AddressSanitizer



=== TEST 2: graceful quit under load: every accepted request accounted for, nginx exits in bounded time
--- no_default_http_config
--- http_config eval: $::HttpConfig
--- kafka_mock
topic load-quit 3
rtt 1 200
rtt 2 200
rtt 3 200
--- kafka_mock_before_check
rtt 1 0
rtt 2 0
rtt 3 0
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
my $topic = 'load-quit';
my $master = nginx_pid();
my ($t_quit, $in_flight);
my $t_start = time + 1.5;
my $tick = sub {
    my ($run) = @_;
    my $now = time;
    # quit while requests are in flight (2 s at most; checked below)
    if (!$t_quit && $now >= $t_start
        && ($run->{in_flight}->() || $now >= $t_start + 2))
    {
        nginx_signal('quit');
        $t_quit = $now;
        $in_flight = $run->{in_flight}->();
    }
    # keep trying for a while: these connections are refused
    return $t_quit && $now > $t_quit + 0.5;
};
my $run = load_run(port => nginx_port(), concurrency => 32, keepalive => 16,
                   rate => 1500, max_requests => 40000, max_time => 30, answer_timeout => 20,
                   request => main::generator('rq', $topic), tick => $tick);
ok($t_quit, 'SIGQUIT sent under load');
cmp_ok($in_flight, '>', 0, "$in_flight requests in flight at the SIGQUIT");
my $bound = $::DeliveryTimeout + 10;
my $status = nginx_wait($t_quit + $bound - time);
my $took = time - $t_quit;
# the mock cluster serves the next blocks too: back to no latency
kafka_mock("rtt $_ 0") for 1 .. 3;
ok(defined $status, sprintf('nginx exited %.2fs after SIGQUIT (bound %ds)', $took, $bound));
is($status, 0, 'exit status 0');
my @early = grep { $_->{outcome} eq 'refused' && $_->{t_start} < $t_quit } @{ $run->{requests} };
is(scalar @early, 0, 'no connection refused before the SIGQUIT');
my $spans = main::spanning($run, $t_quit);
cmp_ok($spans, '>', 0, "$spans requests written before the SIGQUIT were answered after it");
my @records = kafka_records($topic);
my $acc = load_access_log(nginx_prefix() . '/logs/access.log');
my $f = load_account(run => $run, topic => $topic, records => \@records, statuses => undef,
                     access => $acc, allow_refused => 1, allow_not_accepted => 1,
                     label => 'quit');
cmp_ok($f->{200}, '>', 0, 'sync sends answered');
cmp_ok($f->{202}, '>', 0, 'async sends accepted');
cmp_ok($f->{refused}, '>', 0, 'connections after the quit are refused');
--- no_error_log
exited on signal
shutdown, purging
no delivery report for
AddressSanitizer



=== TEST 3: async load while brokers go down and come back and a leader moves: every request accounted for
--- no_default_http_config
--- http_config eval: $::HttpConfig
--- kafka_mock
topic load-broker 3
leader load-broker 0 1
leader load-broker 1 2
leader load-broker 2 3
--- config eval: $::Config
--- request
GET /health
--- error_code: 200
--- test_code
my $topic = 'load-broker';
# the leaders of partitions 0, 1, 2 are brokers 1, 2, 3: a broker down for
# less than the delivery timeout delays its partition, a leader moves
# mid-stream, and broker 3 down for longer makes partition 2 time out
my $dt = $::DeliveryTimeout;
my @plan = ([1, 'down 1'], [4, 'up 1'], [5, "leader $topic 0 2"], [6, 'down 2'],
            [9, 'up 2'], [10, 'down 3'], [10 + $dt + 2, 'up 3'], [10 + $dt + 3, undef]);
my $steps = @plan - 1;
my $t0 = time;
my @done;
my $tick = sub {
    my ($run) = @_;
    while (@plan && time - $t0 >= $plan[0][0]) {
        my ($at, $cmd) = @{ shift @plan };
        return 1 unless defined $cmd;
        kafka_mock($cmd);
        push @done, sprintf '%.1fs %s (%d requests so far)', time - $t0, $cmd, $run->{issued};
    }
    return 0;
};
my $run = eval {
    load_run(port => nginx_port(), concurrency => 32, keepalive => 16,
             rate => 1000, max_requests => 40000, max_time => 40, answer_timeout => 20,
             request => main::generator('rb', $topic, async_only => 1), tick => $tick);
};
my $err = $@;
kafka_mock("up $_") for 1 .. 3;
die $err unless $run;
diag("mock: $_") for @done;
is(scalar @done, $steps, 'brokers went down and up and a leader moved under load');
my $st = main::final_statuses($run);
my @records = kafka_records($topic);
my $acc = load_access_log(nginx_prefix() . '/logs/access.log');
my $f = load_account(run => $run, topic => $topic, records => \@records, statuses => $st,
                     access => $acc, label => 'broker', mock_no_dedupe => 1);
main::pending_followup($run, $st) if $f->{PENDING};
cmp_ok($f->{OK}, '>', 0, 'async sends delivered');
cmp_ok($f->{ERROR}, '>', 0, 'sends to the partition whose leader was down too long ended in ERROR');
--- no_error_log
exited on signal
shutdown, purging
no delivery report for
AddressSanitizer
