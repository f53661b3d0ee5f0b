# What only a real broker can show: Apache Kafka behind Toxiproxy, as
# `make test-kafka` starts them (tools/test-kafka.sh).  nginx bootstraps
# through Toxiproxy's kafka-proxy; every record is read back on the
# broker's INTERNAL listener, never through the proxy (its toxics would
# distort the count).
#
#   1  the duplicate lesson: a late acknowledgement, plain vs idempotent
#   2  the lab's 5 s latency and 2 s timeout toxics, and recovery
#   3  the broker killed (kill -9) and restarted under async and sync load
#   4  the idempotent producer's id and epoch come from the broker
#   5  the proxy disabled and enabled: every broker unreachable
#
# Skipped unless TEST_NGINX_KAFKA_BROKERS, TEST_NGINX_KAFKA_READ_BROKERS,
# TEST_NGINX_TOXIPROXY_URL and TEST_NGINX_KAFKA_CTL name a real cluster.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer;
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

BEGIN {
    my @missing = grep { !defined $ENV{$_} || $ENV{$_} eq '' }
        qw(TEST_NGINX_KAFKA_BROKERS TEST_NGINX_KAFKA_READ_BROKERS
           TEST_NGINX_TOXIPROXY_URL TEST_NGINX_KAFKA_CTL);
    if (@missing) {
        Test::More::plan(skip_all => "no real Kafka cluster (@missing unset):"
                                     . " make test-kafka runs this file");
    }
}
plan('no_plan');

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

our $Topic = 'bhf-transactions';
my $Toxi = HTTP::Tiny->new(timeout => 10);
my $ToxiUrl = $ENV{TEST_NGINX_TOXIPROXY_URL};

# Toxiproxy's API: proxy kafka-proxy, as in the lab
sub toxi {
    my ($method, $path, $body) = @_;
    my $r = $Toxi->request($method, "$ToxiUrl$path",
        defined $body ? { content => JSON::PP::encode_json($body),
                          headers => { 'Content-Type' => 'application/json' } } : {});
    die "toxiproxy $method $path: $r->{status} $r->{content}\n"
        unless $r->{success} || ($method eq 'DELETE' && $r->{status} == 404);
    return $r->{content};
}

sub toxic_add {
    my ($name, $type, $attributes) = @_;
    toxi('POST', '/proxies/kafka-proxy/toxics',
         { name => $name, type => $type, stream => 'downstream', toxicity => 1.0,
           attributes => $attributes });
}

sub toxic_remove { toxi('DELETE', "/proxies/kafka-proxy/toxics/$_[0]") }

sub proxy_enable { toxi('POST', '/proxies/kafka-proxy', { enabled => $_[0] ? JSON::PP::true : JSON::PP::false }) }

# every toxic removed, the proxy enabled: the state each block starts from
sub proxy_reset {
    my $p = JSON::PP::decode_json(toxi('GET', '/proxies/kafka-proxy'));
    toxic_remove($_->{name}) for @{ $p->{toxics} || [] };
    proxy_enable(1);
}

END { eval { proxy_reset(); 1 } }

# the broker, through tools/kafka/kafka.sh (KAFKA_* from the runner)
sub kafka_ctl {
    my ($cmd) = @_;
    my $out = `$ENV{TEST_NGINX_KAFKA_CTL} $cmd 2>&1`;
    die "kafka.sh $cmd failed ($?):\n$out" if $?;
    note("kafka.sh $cmd: $out");
    return $out;
}

# GET /health/detail, decoded
sub detail {
    my ($s, undef, $b) = http_request('GET', '/health/detail');
    die "health detail: $s $b" unless $s == 200;
    return JSON::PP::decode_json($b);
}

# the nginx error log of the running block
sub error_log { Test::KafkaProducer::_slurp(nginx_prefix() . '/logs/error.log') }

# polls until $code returns true or $timeout seconds passed; returns its value
sub until_true {
    my ($code, $timeout) = @_;
    my $end = time + $timeout;
    while (1) {
        my $v = $code->();
        return $v if $v || time > $end;
        sleep 0.1;
    }
}

# a request made by a child process while the test goes on: returns a
# function that waits for it and gives ($status, \%headers, $body)
sub http_request_bg {
    my ($method, $uri, %opt) = @_;
    my $file = nginx_prefix() . '/bg-' . int(rand(1e9)) . '.json';
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $r = eval { scalar http_request($method, $uri, undef, %opt) } || { error => $@ };
        open my $fh, '>', $file or POSIX::_exit(1);
        print {$fh} JSON::PP->new->allow_nonref->encode(
            { status => $r->{status}, headers => $r->{headers}, body => $r->{body},
              elapsed => $r->{elapsed}, error => $r->{error} });
        close $fh;
        POSIX::_exit(0);    # not the harness's END blocks: nginx is the parent's
    }
    return sub {
        waitpid $pid, 0;
        my $r = JSON::PP::decode_json(Test::KafkaProducer::_slurp($file) || '{}');
        return ($r->{status}, $r->{headers} || {}, $r->{body} // '', $r->{elapsed}, $r->{error});
    };
}

# sync sends until one answers 200 (recovery), at most $tries times
sub send_until_ok {
    my ($uri, $tries) = @_;
    my ($s, $h, $b);
    for (1 .. $tries // 40) {
        ($s, $h, $b) = http_request('POST', $uri);
        last if $s == 200;
        sleep 0.5;
    }
    return ($s, $h, $b);
}

# the record batches of a partition as the broker stored them
# (kafka.sh dump: DumpLogSegments): offset => { producerId, producerEpoch,
# baseSequence, key }
sub stored_batches {
    my ($topic, $partition) = @_;
    my %at;
    my $batch;
    for (split /\n/, kafka_ctl("dump $topic $partition")) {
        if (/^baseOffset: (\d+) lastOffset: (\d+) .*baseSequence: (-?\d+) .*producerId: (-?\d+) producerEpoch: (-?\d+)/) {
            $batch = { baseOffset => $1, lastOffset => $2, baseSequence => $3,
                       producerId => $4, producerEpoch => $5 };
        }
        elsif (/^\| offset: (\d+) .* key: (\S+) payload:/ && $batch) {
            $at{$1} = { %$batch, key => $2 };
        }
    }
    return \%at;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the duplicate lesson: a late acknowledgement stores a plain send twice, an idempotent one once
The broker appends at once, Toxiproxy holds its answers 3 s, beyond the
producers' 1 s socket timeout and well below the 30 s delivery timeout:
librdkafka gives up on the request, reconnects and sends the batch again.
The broker stores the plain resend as a new record; it recognises the
idempotent resend (same producer id, epoch and sequence) and answers with
the first offset.
--- init_code
main::proxy_reset();
--- http_config
    kafka_producer_option socket.timeout.ms 1000;
    kafka_producer_delivery_timeout 30s;
--- config eval: $::Config
--- request eval
# connections, metadata and the producer id first, as the lab adds its
# toxic to a running system
["POST /api/v1/send?mode=plain&eventId=k1-warm-plain&partition=0",
 "POST /api/v1/send?mode=idempotent&eventId=k1-warm-idempotent&partition=0"]
--- error_code eval: [200, 200]
--- timeout: 60
--- test_code
my %count;
for my $mode (qw(plain idempotent)) {
    my $before = () = error_log() =~ /timed out/gi;
    main::toxic_add('late_ack', 'latency', { latency => 3000 });
    my $uri = "/api/v1/send?mode=$mode&eventId=k1-$mode&partition=0";
    my $wait = main::http_request_bg('POST', $uri, timeout => 45);
    # the fault has worked once librdkafka says a request timed out
    my $seen = main::until_true(sub { (() = error_log() =~ /timed out/gi) > $before }, 20);
    ok($seen, "$mode: librdkafka timed a Produce request out under the toxic")
        or diag(error_log());
    main::toxic_remove('late_ack');
    my ($s, $h, $b) = $wait->();
    is($s, 200, "$mode: the send succeeds once the answers come in time") or diag($b);
    kafka_check_send($uri, $s, $h, $b, label => "$mode send", count => '-');
    $count{$mode} = kafka_count_event($main::Topic, "k1-$mode");
}
cmp_ok($count{plain}, '>=', 2, "plain: the topic holds the record $count{plain} times");
is($count{idempotent}, 1, "idempotent: the topic holds the record $count{idempotent} time");
Test::More::diag("duplicate lesson on Apache Kafka: plain $count{plain} copies, idempotent $count{idempotent}");
# the API tells the lesson too: each producer counts the request it gave
# up on (librdkafka's statistics, every second)
my $d;
for (1 .. 30) {
    $d = main::detail();
    last if ($d->{producers}{plain}{retries} // 0) >= 1
            && ($d->{producers}{idempotent}{retries} // 0) >= 1;
    select undef, undef, undef, 0.2;
}
cmp_ok($d->{producers}{$_}{retries} // -1, '>=', 1, "$_: retries $d->{producers}{$_}{retries} in the health detail")
    for qw(plain idempotent);



=== TEST 2: the lab's toxics: 5 s latency (sync waits and succeeds, async OK, once), 2 s timeout (503/504 _MSG_TIMED_OUT, ERROR), recovery by itself
The lab's toxics verbatim on kafka-proxy: latency_5s (5000 ms, jitter
500, downstream), then timeout_2s (downstream: the broker's answers never
come, the connection is closed after 2 s).  The lab's knobs (socket
timeout 60 s), an 8 s delivery timeout.
--- init_code
main::proxy_reset();
--- http_config
    kafka_producer_delivery_timeout 8s;
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=k2-warm-plain",
 "POST /api/v1/send?mode=idempotent&eventId=k2-warm-idempotent"]
--- error_code eval: [200, 200]
--- timeout: 60
--- test_code
# latency_5s: sync sends wait for the broker and succeed, async reach OK
main::toxic_add('latency_5s', 'latency', { latency => 5000, jitter => 500 });
my @bg = map { [$_, main::http_request_bg('POST', "/api/v1/send?mode=$_&eventId=k2-latency-$_", timeout => 30)] }
         qw(plain idempotent);
my ($as, $ah, $ab) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=k2-latency-async&sendMode=async');
is($as, 202, 'latency: async send accepted at once');
for (@bg) {
    my ($mode, $wait) = @$_;
    my ($s, $h, $b, $took) = $wait->();
    is($s, 200, sprintf('latency: sync %s send answered 200 after %.1f s', $mode, $took // -1)) or diag($b);
    cmp_ok($took, '>=', 4, "latency: sync $mode send waited for the delayed answer");
    kafka_check_send("/api/v1/send?mode=$mode&eventId=k2-latency-$mode", $s, $h, $b,
                     label => "latency $mode");    # exactly once
}
my $st = status_wait($ah->{location}, 20);
like($st, qr/"state":"OK"/, 'latency: the async record reaches OK');
is(kafka_count_event($main::Topic, 'k2-latency-async'), 1, 'latency: the async record is stored once');
main::toxic_remove('latency_5s');
my ($s, $h, $b) = main::send_until_ok('/api/v1/send?mode=idempotent&eventId=k2-after-latency');
is($s, 200, 'latency removed: sends succeed') or diag($b);
kafka_check_send('/api/v1/send?mode=idempotent&eventId=k2-after-latency', $s, $h, $b, label => 'after latency');

# timeout_2s: nothing comes back: 504 after the delivery timeout, ERROR
main::toxic_add('timeout_2s', 'timeout', { timeout => 2000 });
@bg = map { [$_, main::http_request_bg('POST', "/api/v1/send?mode=$_&eventId=k2-timeout-$_", timeout => 30)] }
      qw(plain idempotent);
($as, $ah, $ab) = http_request('POST', '/api/v1/send?mode=idempotent&eventId=k2-timeout-async&sendMode=async');
is($as, 202, 'timeout: async send accepted at once');
for (@bg) {
    my ($mode, $wait) = @$_;
    my ($s, $h, $b, $took) = $wait->();
    # the toxic closes every connection after 2 s: librdkafka counts the
    # broker down, and a message that times out then is a 503 ("all brokers
    # are down"); a 504 if it timed out while a connection was up
    like($s, qr/^50[34]$/, sprintf('timeout: sync %s send answered %s after %.1f s', $mode, $s // '-', $took // -1))
        or diag($b);
    like($b, qr/"kafkaError":"_MSG_TIMED_OUT"/, "timeout: $mode: _MSG_TIMED_OUT");
    Test::More::diag("timeout_2s: sync $mode: $s $b");
    cmp_ok($took, '<', 8 + 5 + 2, "timeout: $mode: answered within the delivery timeout + 5 s");
}
$st = status_wait($ah->{location}, 20);
like($st, qr/"state":"ERROR".*"error":"_MSG_TIMED_OUT/, 'timeout: the async record ends in ERROR');
main::toxic_remove('timeout_2s');
($s, $h, $b) = main::send_until_ok('/api/v1/send?mode=plain&eventId=k2-after-timeout');
is($s, 200, 'timeout removed: sends succeed again, no reload') or diag($b);
kafka_check_send('/api/v1/send?mode=plain&eventId=k2-after-timeout', $s, $h, $b, label => 'after timeout');
($s, $h, $b) = main::send_until_ok('/api/v1/send?mode=idempotent&eventId=k2-after-timeout-i');
is($s, 200, 'timeout removed: idempotent sends succeed again') or diag($b);
kafka_check_send('/api/v1/send?mode=idempotent&eventId=k2-after-timeout-i', $s, $h, $b, label => 'after timeout (idempotent)');
# the toxic lets requests through and drops the answers: a timed-out send
# may be stored ("possibly persisted"); an idempotent one never twice
my %n = map { ($_ => kafka_count_event($main::Topic, "k2-timeout-$_")) } qw(plain idempotent async);
cmp_ok($n{idempotent}, '<=', 1, "timeout: the idempotent 504 send is stored $n{idempotent} time(s), never twice");
cmp_ok($n{async}, '<=', 1, "timeout: the idempotent ERROR send is stored $n{async} time(s), never twice");
Test::More::diag("lab toxics on Apache Kafka: timed-out sends stored: plain $n{plain}, idempotent $n{idempotent}, async idempotent $n{async}");
my $d = main::detail();
Test::More::diag("idempotent producer after the toxics: state $d->{producers}{idempotent}{state}, replaced $d->{producers}{idempotent}{replaced}");
--- no_error_log
[crit]



=== TEST 3: the broker killed (kill -9) and restarted under async and sync load: 503/504 while down, every 202 ends OK or ERROR, service resumes without reload
--- init_code
main::proxy_reset();
--- workers: 2
--- no_default_http_config
--- http_config
    kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;
    kafka_producer_status_zone crash:16m;
    kafka_producer_delivery_timeout 8s;
--- config eval: "add_header X-Worker \$pid always;\n$::Config"
--- request
POST /api/v1/send?mode=idempotent&eventId=k3-warm
--- error_code: 200
--- timeout: 120
--- test_code
use Test::KafkaProducer::Load;
my ($down_for, $t0, $t_kill, $t_back, $restart) = (6, time);
my @log;
my $tick = sub {
    my ($run) = @_;
    my $t = time - $t0;
    if (!$t_kill && $t >= 2) {
        main::kafka_ctl('kill');
        $t_kill = time;
        push @log, sprintf '%.1fs kill -9 (%d requests so far)', $t, $run->{issued};
    }
    if ($t_kill && !$restart && time - $t_kill >= $down_for) {
        # restarted by a child: the load goes on meanwhile
        $restart = fork;
        die "fork: $!" unless defined $restart;
        if (!$restart) {
            my $out = `$ENV{TEST_NGINX_KAFKA_CTL} start 2>&1`;
            POSIX::_exit($? ? 1 : 0);
        }
        push @log, sprintf '%.1fs restart begins (%d requests so far)', $t, $run->{issued};
    }
    if ($restart && !$t_back && waitpid($restart, POSIX::WNOHANG()) == $restart) {
        die "kafka.sh start failed\n" if $?;
        $t_back = time;
        push @log, sprintf '%.1fs broker ready again (%d requests so far)', $t, $run->{issued};
    }
    return $t_back && time - $t_back >= 6;
};
my $seq_tag = 'k3';
my $run = load_run(port => nginx_port(), concurrency => 16, keepalive => 8, rate => 100,
                   max_requests => 20000, max_time => 90, answer_timeout => 30,
                   request => sub {
                       my ($seq) = @_;
                       my $mode = $seq % 2 ? 'plain' : 'idempotent';
                       my $sm = int($seq / 2) % 2 ? 'async' : 'sync';
                       return { uri => "/api/v1/send?mode=$mode&eventId=$seq_tag-$seq&sendMode=$sm",
                                event_id => "$seq_tag-$seq", mode => $mode, send_mode => $sm };
                   },
                   tick => $tick);
diag("broker: $_") for @log;
ok($t_kill && $t_back, 'the broker was killed and came back under load');
my @reqs = @{ $run->{requests} };
my (%status, @bad, %by_phase);
for my $r (@reqs) {
    if (($r->{outcome} // '') ne 'answered') {
        push @bad, "$r->{event_id}: $r->{outcome}";
        next;
    }
    $status{ $r->{status} }++;
    push @bad, "$r->{event_id}: status $r->{status}: $r->{body}"
        unless $r->{status} =~ /^(?:200|202|503|504)$/;
    if ($r->{status} =~ /^50[34]$/) {
        push @bad, "$r->{event_id}: $r->{status} without a kafkaError: $r->{body}"
            unless $r->{body} =~ /^\{"type":"about:blank",.*"kafkaError":"_[A-Z_]+","persisted":"(?:no|possibly)"\}$/;
    }
}
ok(!@bad, 'every request answered 200, 202, 503 or 504 (problem+json with kafkaError)')
    or diag(join "\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]);
cmp_ok(($status{503} // 0) + ($status{504} // 0), '>', 0, 'sync sends failed cleanly while the broker was down');

# every 202 ends OK or ERROR once the delivery timeout has passed
my @acc = grep { ($_->{status} // 0) == 202 } @reqs;
my $last = 0;
for (@acc) { $last = $_->{t_end} if $_->{t_end} > $last }
my $wait = $last + 8 + 6 - time;
sleep $wait if $wait > 0;
my $st = load_status(nginx_port(), [ map { $_->{headers}{location} } @acc ]);
my %state;
my @records = kafka_records($main::Topic);
my (%at, %n);
for my $rec (@records) {
    $at{"$rec->{partition}/$rec->{offset}"} = $rec;
    my $p = $rec->{payload_json};
    $n{ $p->{eventId} }++ if ref $p eq 'HASH';
}
my (@wrong, %dup);
for my $r (@reqs) {
    next unless ($r->{outcome} // '') eq 'answered';
    my ($pos, $delivered);
    if ($r->{status} == 200) {
        my $j = eval { JSON::PP::decode_json($r->{body}) } || {};
        ($pos, $delivered) = ("$j->{partition}/$j->{offset}", 1);
    }
    elsif ($r->{status} == 202) {
        my $s = $st->{ $r->{headers}{location} };
        my $j = eval { JSON::PP::decode_json($s->{body}) } || {};
        my $state = $j->{state} // '(no status)';
        $state{$state}++;
        if ($state eq 'OK') {
            ($pos, $delivered) = ("$j->{partition}/$j->{offset}", 1);
        }
        elsif ($state ne 'ERROR') {
            push @wrong, "$r->{event_id}: async state $state";
        }
    }
    my $count = $n{ $r->{event_id} } // 0;
    if ($delivered) {
        my $rec = $at{$pos};
        my $eid = $rec && ref $rec->{payload_json} eq 'HASH' ? $rec->{payload_json}{eventId} // '' : '';
        push @wrong, "$r->{event_id}: delivered at $pos, which holds " . ($rec ? "'$eid'" : 'nothing')
            if $eid ne $r->{event_id};
        push @wrong, "$r->{event_id} (idempotent, delivered): $count records"
            if $r->{mode} eq 'idempotent' && $count != 1;
        $dup{plain} += $count - 1 if $r->{mode} eq 'plain' && $count > 1;
    }
    else {
        # failed: a timed-out send may have been stored (possibly persisted)
        $dup{failed_stored}++ if $count;
        push @wrong, "$r->{event_id} (idempotent, failed): $count records"
            if $r->{mode} eq 'idempotent' && $count > 1;
    }
}
is($state{PENDING} // 0, 0, 'no async record left PENDING');
ok(!@wrong, 'every delivered send is in the topic at its position, an idempotent one exactly once')
    or diag(join "\n", @wrong[0 .. ($#wrong > 20 ? 20 : $#wrong)]);
cmp_ok($state{OK} // 0, '>', 0, 'async sends delivered');
my @after = grep { $_->{t_start} > $t_back + 2 && $_->{send_mode} eq 'sync' } @reqs;
my @after_ok = grep { ($_->{status} // 0) == 200 } @after;
ok(@after && @after == @after_ok, sprintf('service resumed without reload: %d of %d sync sends 2 s after the restart answered 200',
                                          scalar @after_ok, scalar @after));
Test::More::diag(sprintf 'kill -9 under load: %d requests: %s; async: %s; plain extra copies %d, failed sends stored %d; broker down %.1f s',
    scalar @reqs, join(' ', map { "$_ x$status{$_}" } sort keys %status),
    join(' ', map { "$_ $state{$_}" } sort keys %state), $dup{plain} // 0, $dup{failed_stored} // 0,
    ($t_back // time) - ($t_kill // time));
--- no_error_log
[crit]
exited on signal



=== TEST 4: the idempotent producer's id and epoch in the health detail come from the broker
The detail's producerId/producerEpoch are the ones the broker stored with
the idempotent record's batch (DumpLogSegments on the partition), while
the plain record's batch carries none (-1).
--- init_code
main::proxy_reset();
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=idempotent&eventId=k4-idempotent&partition=1",
 "POST /api/v1/send?mode=plain&eventId=k4-plain&partition=1"]
--- error_code eval: [200, 200]
--- test_code
my $d = main::detail()->{producers};
my $i = $d->{idempotent};
is($i->{idempotence}, 'Assigned', 'idempotent producer: state Assigned');
like($i->{producerId}, qr/^\d+$/, "health detail: producerId $i->{producerId}");
like($i->{producerEpoch}, qr/^\d+$/, "health detail: producerEpoch $i->{producerEpoch}");
is($d->{plain}{idempotence}, 'disabled', 'plain producer: no idempotence');
my %off;
for my $mode (qw(idempotent plain)) {
    my ($s, undef, $b) = http_request('POST', "/api/v1/send?mode=$mode&eventId=k4-$mode-2&partition=1");
    is($s, 200, "$mode: a second send") or diag($b);
    ($off{$mode}) = $b =~ /"offset":(\d+)/;
}
my $batches = main::stored_batches('bhf-transactions', 1);
my $bi = $batches->{ $off{idempotent} // -1 };
ok($bi, "the broker stored the idempotent record at 1\@$off{idempotent}") or diag(explain($batches));
is($bi->{producerId}, $i->{producerId}, "its batch carries producer id $i->{producerId}");
is($bi->{producerEpoch}, $i->{producerEpoch}, "and epoch $i->{producerEpoch}");
cmp_ok($bi->{baseSequence}, '>=', 1, "with sequence $bi->{baseSequence} (the producer's second record)");
my $bp = $batches->{ $off{plain} // -1 };
is($bp && $bp->{producerId}, -1, 'the plain record\'s batch has no producer id');
Test::More::diag("idempotent producer on Apache Kafka: producerId $i->{producerId}, epoch $i->{producerEpoch}, as stored in the batch at 1\@$off{idempotent}");



=== TEST 5: the proxy disabled (every broker unreachable): sync 503 within the delivery timeout, async ERROR, recovery when enabled, without reload
--- init_code
main::proxy_reset();
main::proxy_enable(0);
--- http_config
    kafka_producer_delivery_timeout 3s;
--- config eval: $::Config
--- request eval
["POST /api/v1/send?mode=plain&eventId=k5a",
 "POST /api/v1/send?mode=idempotent&eventId=k5b&sendMode=async"]
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
--- final_code
main::proxy_enable(1);
my ($s, $h, $b) = main::send_until_ok('/api/v1/send?mode=plain&eventId=k5c');
is($s, 200, 'sends succeed again once the proxy is enabled');
kafka_check_send('/api/v1/send?mode=plain&eventId=k5c', $s, $h, $b, label => 'after recovery');
# now with live connections: the proxy closes them when disabled
main::proxy_enable(0);
my $wait = main::http_request_bg('POST', '/api/v1/send?mode=idempotent&eventId=k5d', timeout => 15);
($s, $h, $b) = $wait->();
like($s, qr/^50[34]$/, "connected, then the proxy disabled: sync idempotent send answered $s") or diag($b);
like($b, qr/"kafkaError":"_/, 'with the Kafka error');
main::proxy_enable(1);
($s, $h, $b) = main::send_until_ok('/api/v1/send?mode=idempotent&eventId=k5e');
is($s, 200, 'and recovers when it is enabled again, without reload');
kafka_check_send('/api/v1/send?mode=idempotent&eventId=k5e', $s, $h, $b, label => 'after the second recovery');
my $n = kafka_count_event($main::Topic, 'k5d');
cmp_ok($n, '<=', 1, "the failed idempotent send is stored $n time(s), never twice");
--- error_log
_ALL_BROKERS_DOWN
delivery to topic "bhf-transactions" failed (plain producer, not written): _MSG_TIMED_OUT
